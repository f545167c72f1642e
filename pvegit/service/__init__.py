"""What runs on its own: the run launcher, the scheduler, notifications, housekeeping, fleet status.

Every snapshot, whoever starts it (the CLI, a timer, the scheduler, the web UI,
the API), is launched, recorded and reported here, so that a run from cron
notifies and mirrors exactly as a run from ``pvegit serve``.
"""
