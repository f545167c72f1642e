"""``pvegit snapshot`` and ``pvegit demo``."""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
from pvegit.cli import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL
from pvegit.cli.common import actor, open_home, print_json
from pvegit.config.file import load_config
from pvegit.config.home import Home
from pvegit.errors import ConfigError
from pvegit.state.store import Host, Run, RunStatus, Store
from pvegit.textsafe import unwrapped

# A run worth printing on stdout; a partial, failed or refused one goes to stderr.
_CLEAN = (RunStatus.CHANGED, RunStatus.UNCHANGED)


def exit_code(runs: list[Run]) -> int:
    """1 if any run failed or was refused, else 3 if any was partial, else 0."""
    statuses = {run.status for run in runs}
    if any(status.is_failure for status in statuses):
        return EXIT_FAILED
    if RunStatus.PARTIAL in statuses:
        return EXIT_PARTIAL
    return EXIT_OK


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

    def for_host(self, name: str) -> object:
        def report(stage: str, done: int, total: int) -> None:
            if not self._enabled:
                return
            count = f" {done}/{total}" if total else (f" {done}" if done else "")
            with self._lock:
                terminal = unwrapped(sys.stderr)  # its own control sequences, not escaped
                terminal.write(f"\r\033[K[{self._finished}/{self._total}] {name}: {stage}{count}")
                terminal.flush()

        return report

    def host_done(self, line: str) -> None:
        with self._lock:
            self._finished += 1
            if self._enabled:
                unwrapped(sys.stderr).write("\r\033[K")
                unwrapped(sys.stderr).flush()


def snapshot_hosts(
    home: Home,
    store: Store,
    hosts: list[Host],
    options: SnapshotOptions,
    jobs: int,
    *,
    quiet: bool = False,
) -> list[Run]:
    """Snapshot hosts, ``jobs`` at a time; one host failing does not stop the others."""
    progress = _TerminalProgress(len(hosts))
    results: dict[str, Run] = {}

    def one(host: Host) -> None:
        run = take_snapshot(home, store, host, options, progress=progress.for_host(host.name))  # type: ignore[arg-type]
        results[host.name] = run
        line = describe(run)
        progress.host_done(line)
        if not quiet:
            stream = sys.stdout if run.status in _CLEAN else sys.stderr
            print(line, file=stream, flush=True)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(hosts)))) as pool:
        list(pool.map(one, hosts))
    return [results[host.name] for host in hosts]


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
    config = load_config(home.root)
    options = SnapshotOptions(
        trigger="cli",
        actor=actor(),
        force=arguments.force,
        io_timeout=arguments.timeout,
        time_limit=config.run_timeout,
        reserve_bytes=config.storage_reserve_mb * 1024 * 1024,
        warn_percent=config.storage_warn_percent,
        inventory_limits=config.inventory_limits,
    )
    runs = snapshot_hosts(home, store, hosts, options, arguments.jobs, quiet=arguments.json)
    if arguments.json:
        print_json([run.to_json() for run in runs])
    elif len(runs) > 1:
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        print(f"{len(runs)} hosts: {summary}")
    return exit_code(runs)
