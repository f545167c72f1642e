"""``pvegit repair`` and ``pvegit rebuild-state``: getting back to the newest good state."""

from __future__ import annotations

import argparse
import sys

from pvegit.cli.common import actor, home_of, open_home
from pvegit.errors import PvegitError


def cmd_repair(arguments: argparse.Namespace) -> int:
    from pvegit.actions.repair import repair_host

    home, store = open_home(arguments)
    failed = 0
    for name in arguments.names:
        try:
            report = repair_host(
                home,
                store,
                name,
                actor=actor(),
                accept_loss=arguments.accept_loss,
            )
        except PvegitError as err:  # one host's failure does not stop the others
            print(f"pvegit: {err}", file=sys.stderr)
            failed += 1
            continue
        if report.nothing_to_repair:
            print(f"{name}: nothing to repair (the repository is whole, the run log complete)")
            continue
        for action in report.actions:
            print(f"{name}: {action}")
        if report.reason is not None:
            target = report.main_after[:10] if report.main_after else "nothing"
            print(f"{name}: main now points at {target}: {report.reason}")
        if report.lost:
            print(
                f"{name}: {len(report.lost)} commit(s) the run log recorded are lost (their "
                f"objects are gone): {', '.join(commit[:10] for commit in report.lost[:5])}; "
                "the next snapshot records the node again"
            )
        if report.runs_recorded:
            print(
                f"{name}: recorded {report.runs_recorded} run(s) the run log lacked, "
                "from their commits' trailers"
            )
        if report.aside is not None:
            print(f"{name}: the damaged files are kept in {report.aside}")
    return 1 if failed else 0


def cmd_rebuild_state(arguments: argparse.Namespace) -> int:
    from pvegit.actions.rebuild import rebuild_state

    home = home_of(arguments)
    result = rebuild_state(home, actor=actor())
    if result.reason is None:
        print(f"{home.state_path} is readable and holds pvegit's records: nothing to rebuild")
        return 0
    print(f"state.db: {result.reason}")
    for source, target in result.moved:
        print(f"moved {source.name} aside to {target} (kept, never overwritten)")
    problems = 0
    for host in result.hosts:
        if host.problem:
            problems += 1
            print(f"pvegit: {host.name}: {host.problem}", file=sys.stderr)
            if not host.settings_from:
                continue
        print(f"{host.name}: host back (settings from {host.settings_from}), {host.runs} run(s)")
        if host.needs_trust:
            print(
                f"{host.name}: its host key is not pinned any more: check its fingerprint and "
                f"run `pvegit host trust {host.name}` before its next snapshot"
            )
    print(
        "not rebuilt (state.db alone held them): web users (`pvegit user add NAME`), API tokens "
        "(`pvegit token add NAME`), notification targets made in the web UI, the audit log"
    )
    return 1 if problems else 0
