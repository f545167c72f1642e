"""What pvegit is told: its home, pvegit.toml, each host's settings, schedules, roles, categories.

Pure data and its validation, read once and handed down. ``home`` says where
pvegit keeps things; ``file`` loads pvegit.toml with key-by-key errors;
``host_settings`` checks a host's settings field by field; ``schedules`` parses
"daily", "every 6h" and cron lines; ``roles`` says who may do what;
``categories`` is the catalogue of what to collect from a node, what never to
collect (runtime state) and what is a secret; ``selection`` matches paths
against it and builds the Selection a host's snapshot collects.
"""
