"""``pvegit snapshot``: runs through the engine's launcher, like serve's.

A CLI run (cron, the systemd timer, by hand) notifies and mirrors exactly as a
run started in ``pvegit serve`` (pvegit/service/launcher.py); before exiting
the command waits, for at most ``NOTIFY_WAIT`` seconds, for the notifications
to be delivered, and says on stderr which target or mirror push failed.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from pvegit.actions.snapshot import Progress, SnapshotOptions
from pvegit.cli import EXIT_OK, runs_exit_code
from pvegit.cli.common import actor, open_home, print_json
from pvegit.config.file import load_config
from pvegit.config.home import Home
from pvegit.errors import ConfigError
from pvegit.service.launcher import RunLauncher
from pvegit.service.notify import Notifier, all_targets
from pvegit.service.progress import describe_progress
from pvegit.state.store import Host, Run, RunStatus, Store
from pvegit.textsafe import unwrapped

# A CLI run may not linger: one retry of a failed delivery, and a bound on the wait.
NOTIFY_RETRY_DELAYS = (2.0,)
NOTIFY_WAIT = 60.0

# A run worth printing on stdout; a partial, failed or refused one goes to stderr.
_CLEAN = (RunStatus.CHANGED, RunStatus.UNCHANGED)


def describe(run: Run) -> str:
    """One line about a finished run."""
    seconds = f"{run.duration:.2f} s" if run.duration is not None else ""
    if run.status is RunStatus.CHANGED:
        return (
            f"{run.host}: changed, commit {run.commit_id[:10] if run.commit_id else '?'} "
            f"({run.changed_files} changed, {run.files} files) {seconds}"
        )
    if run.status is RunStatus.UNCHANGED:
        return f"{run.host}: unchanged ({run.files} files) {seconds}"
    if run.status is RunStatus.PARTIAL:
        commit = f"commit {run.commit_id[:10]}" if run.commit_id else "no change"
        return f"{run.host}: PARTIAL, {commit}: {run.error}"
    return f"{run.host}: {run.status.upper()}: {run.error}"


class _TerminalProgress:
    """'[n/N] host: stage done/total' on one rewritten stderr line, terminals only."""

    def __init__(self, total: int) -> None:
        self._enabled = sys.stderr.isatty()
        self._total = total
        self._finished = 0
        self._lock = threading.Lock()

    def for_host(self, name: str) -> Progress:
        def report(stage: str, done: int, total: int) -> None:
            if not self._enabled:
                return
            shown = describe_progress(stage, done, total)
            with self._lock:
                terminal = unwrapped(sys.stderr)  # its own control sequences, not escaped
                terminal.write(f"\r\033[K[{self._finished}/{self._total}] {name}: {shown}")
                terminal.flush()

        return report

    def host_done(self, line: str) -> None:
        with self._lock:
            self._finished += 1
            if self._enabled:
                unwrapped(sys.stderr).write("\r\033[K")
                unwrapped(sys.stderr).flush()


def snapshot_hosts(
    launcher: RunLauncher,
    hosts: list[Host],
    options: SnapshotOptions,
    jobs: int,
    *,
    quiet: bool = False,
) -> list[Run]:
    """Snapshot hosts through ``launcher``, ``jobs`` at a time; one host failing does not
    stop the others. A failed mirror push is said on stderr."""
    progress = _TerminalProgress(len(hosts))
    results: dict[str, Run] = {}

    def one(host: Host) -> None:
        outcome = launcher.run(host, options, progress=progress.for_host(host.name))
        run = outcome.run
        results[host.name] = run
        line = describe(run)
        progress.host_done(line)
        if not quiet:
            stream = sys.stdout if run.status in _CLEAN else sys.stderr
            print(line, file=stream, flush=True)
        if outcome.mirror_error:
            print(f"{host.name}: {outcome.mirror_error}", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(hosts)))) as pool:
        list(pool.map(one, hosts))
    return [results[host.name] for host in hosts]


def report_notifications(notifier: Notifier, timeout: float) -> None:
    """Wait up to ``timeout`` s for the notifications; say on stderr what did not get out."""
    if not notifier.drain(timeout):
        print(
            f"pvegit: {notifier.pending} notification(s) not delivered within {timeout:g} s",
            file=sys.stderr,
        )
    for failure in notifier.failures:
        print(
            f"pvegit: notification {failure.event.kind!r} ({failure.event.title}) "
            f"not delivered to {failure.target!r}: {failure.error}",
            file=sys.stderr,
        )


@contextmanager
def cli_launcher(home: Home, store: Store) -> Iterator[RunLauncher]:
    """The engine's launcher for a command's runs, with pvegit.toml's and the web UI's
    notification targets; on the way out it waits (bounded) for the notifications and
    says on stderr what did not get out."""
    config = load_config(home.root)
    notifier = Notifier(lambda: all_targets(config, store), retry_delays=NOTIFY_RETRY_DELAYS)
    launcher = RunLauncher(home, store, config, notifier=notifier)
    try:
        yield launcher
    finally:
        report_notifications(notifier, NOTIFY_WAIT)
        notifier.close()
        launcher.shutdown()


def cmd_snapshot(arguments: argparse.Namespace) -> int:
    if arguments.remote:
        from pvegit.cli.remote import remote_snapshots

        return remote_snapshots(arguments)
    home, store = open_home(arguments)
    if arguments.all == bool(arguments.names):
        raise ConfigError("name the hosts to snapshot, or give --all (not both)")
    if arguments.jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    hosts = store.hosts() if arguments.all else [store.host(name) for name in arguments.names]
    if not hosts:
        print("no hosts yet: pvegit host add NAME --address ADDRESS")
        return EXIT_OK
    with cli_launcher(home, store) as launcher:
        options = launcher.options(
            "cli", actor(), force=arguments.force, io_timeout=arguments.timeout
        )
        runs = snapshot_hosts(launcher, hosts, options, arguments.jobs, quiet=arguments.json)
    if arguments.json:
        print_json([run.to_json() for run in runs])
    elif len(runs) > 1:
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        print(f"{len(runs)} hosts: {summary}")
    return runs_exit_code(run.status for run in runs)
