from pvegit.cli import main

raise SystemExit(main())
