"""``pvegit audit``: who did what, as the web UI's audit page shows it."""

from __future__ import annotations

import argparse
import json

from pvegit.cli.common import format_time, open_home, print_json
from pvegit.state.restorelog import read_audit_log
from pvegit.textsafe import printable


def cmd_audit(arguments: argparse.Namespace) -> int:
    """Print the newest audit entries (a restore with its state: running, interrupted...).

    One entry, one line: every field is printed with its newlines and other
    control characters escaped, so a name that a failed login made up cannot
    pass for an entry of its own. ``--json`` prints the entries as they are.
    """
    home, store = open_home(arguments)
    events = read_audit_log(
        home, store, limit=arguments.limit, host=arguments.name, action=arguments.action
    )
    if arguments.json:
        print_json([event.to_json() for event in events])
        return 0
    print(f"{'WHEN':<19} {'WHO':<12} {'ACTION':<20} {'HOST':<14} {'STATE':<11} DETAILS")
    for event in events:
        details = " ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value)}"
            for key, value in event.detail.items()
            if value is not None
        )
        actor, action, host, state, details = (
            printable(field)
            for field in (
                event.actor,
                event.action,
                event.host or "-",
                event.state or "-",
                details,
            )
        )
        print(
            f"{format_time(event.at):<19} {actor:<12} {action:<20} {host:<14} {state:<11} {details}"
        )
    return 0
