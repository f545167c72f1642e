from pvegit.cli import run

raise SystemExit(run())
