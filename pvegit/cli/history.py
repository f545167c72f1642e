"""``pvegit log``, ``diff``, ``show``, ``export`` and ``runs``: reading history."""

from __future__ import annotations

import argparse
import sys

from pvegit.actions.export import export_tarball
from pvegit.cli.common import actor, format_time, open_home, print_json
from pvegit.config.home import Home
from pvegit.config.selection import normalize_node_path
from pvegit.content.filediff import file_content, read_diff
from pvegit.errors import NotFound, PvegitError
from pvegit.git.repo import HostRepository
from pvegit.node.tarstream import display_path
from pvegit.state.liveness import settle_runs
from pvegit.state.runlog import open_repository


def _repository(arguments: argparse.Namespace) -> HostRepository:
    home, store = open_home(arguments)
    try:
        store.host(arguments.name)
    except NotFound:
        if not home.repo_path(arguments.name).exists():
            raise
    return open_repository(home, store, arguments.name)


def cmd_log(arguments: argparse.Namespace) -> int:
    path = normalize_node_path(arguments.path) if arguments.path else None
    with _repository(arguments) as repository:
        commits = repository.log(limit=arguments.limit, path=path)
    if arguments.json:
        print_json(
            [
                {
                    "commit": commit.commit_id,
                    "time": commit.time,
                    "subject": commit.subject,
                    "message": commit.message,
                    "trailers": commit.trailers(),
                }
                for commit in commits
            ]
        )
        return 0
    for commit in commits:
        trigger = commit.trailers().get("Trigger", "")
        print(
            f"{commit.short_id}  {format_time(commit.time)}  {commit.subject}"
            + (f"  [{trigger}]" if trigger else "")
        )
    return 0


def _kept_back(paths: list[str]) -> None:
    """Say on stderr that secrets were kept back, and how to see them."""
    if paths:
        print(
            f"pvegit: {len(paths)} file(s) hold secrets (secret files are not shown, "
            "password lines are masked): --reveal shows them and is written to the audit log",
            file=sys.stderr,
        )


def cmd_diff(arguments: argparse.Namespace) -> int:
    paths = [normalize_node_path(path) for path in arguments.path]
    with _repository(arguments) as repository:
        new = repository.resolve(arguments.rev_b or "HEAD")
        if arguments.rev_a:
            old: str | None = repository.resolve(arguments.rev_a)
        else:
            parents = repository.commit(new).parents
            old = parents[0] if parents else None
        diffs = [
            read_diff(repository, change, reveal=arguments.reveal)
            for change in repository.changes(old, new, paths)
        ]
    hidden = ["/" + diff.path for diff in diffs if diff.hidden]
    if arguments.reveal and hidden:  # written down before anything is shown
        _home, store = open_home(arguments)
        store.audit(actor(), "secret shown", arguments.name, paths=hidden, a=old, b=new, via="cli")
    out = sys.stdout
    if arguments.stat:
        for diff in diffs:
            out.write(
                f" /{display_path(diff.path)} | +{diff.added} -{diff.removed}"
                f" ({diff.change.value})\n"
            )
        out.write(
            f" {len(diffs)} files changed, {sum(diff.added for diff in diffs)} insertions(+), "
            f"{sum(diff.removed for diff in diffs)} deletions(-)\n"
        )
    else:
        for diff in diffs:
            out.write(diff.unified())
    if not arguments.reveal:
        _kept_back(hidden)
    return 0


def cmd_show(arguments: argparse.Namespace) -> int:
    revision, _, path = arguments.revision.partition(":")
    with _repository(arguments) as repository:
        commit_id = repository.resolve(revision or "HEAD")
        if path:
            return _show_file(arguments, commit_id, repository, normalize_node_path(path))
        commit = repository.commit(commit_id)
        print(f"commit {commit.commit_id}")
        print(f"Date:   {format_time(commit.time)}")
        print()
        print(commit.message.rstrip())
        print()
        for change in repository.changes(commit.parents[0] if commit.parents else None, commit_id):
            print(f" {change.change.value:>8}  /{display_path(change.path)}")
    return 0


def _show_file(
    arguments: argparse.Namespace, commit_id: str, repository: HostRepository, path: str
) -> int:
    """A file at a revision: whole and as it is (any size, binary too), except what the
    content model keeps back (a secret file, password lines, in a binary file too)
    unless --reveal."""
    _, data = repository.read_file(commit_id, path)
    content = file_content(path, data, reveal=arguments.reveal, max_bytes=None)
    if arguments.reveal and content.hidden:
        _home, store = open_home(arguments)
        store.audit(
            actor(), "secret shown", arguments.name, path=f"/{path}", commit=commit_id, via="cli"
        )
    if content.kind == "secret":
        raise PvegitError(
            f"/{display_path(path)} is a secret file: --reveal shows it (written to the audit log)"
        )
    assert content.data is not None  # with no cap, every kind but secret has its bytes
    sys.stdout.flush()
    sys.stdout.buffer.write(content.data)
    sys.stdout.flush()
    if content.masked:
        _kept_back([path])
    return 0


def cmd_export(arguments: argparse.Namespace) -> int:
    _home, store = open_home(arguments)
    with _repository(arguments) as repository:
        commit_id = repository.resolve(arguments.revision)
        count = export_tarball(repository, commit_id, arguments.output, arguments.name)
    store.audit(actor(), "export", arguments.name, commit=commit_id, output=str(arguments.output))
    print(f"wrote {arguments.output}: {count} entries of {arguments.name} at {commit_id[:10]}")
    return 0


def _repository_names(home: Home, names: list[str]) -> list[str]:
    """The hosts named, each with a repository; all repositories when none are named."""
    if not names:
        return [path.name.removesuffix(".git") for path in sorted(home.repos_dir.glob("*.git"))]
    for name in names:
        if not home.repo_path(name).exists():
            raise NotFound(f"no repository for {name!r} in {home.repos_dir}")
    return names


def cmd_gc(arguments: argparse.Namespace) -> int:
    from pvegit.actions.snapshot import LOCK_TIMEOUT
    from pvegit.git.maintenance import MaintenanceRepository
    from pvegit.state.runlog import named_commits
    from pvegit.system.locks import exclusive

    home, store = open_home(arguments)
    failed = 0
    for name in _repository_names(home, arguments.names):
        try:
            with (
                exclusive(home.lock_path(name), timeout=LOCK_TIMEOUT, what=name),
                MaintenanceRepository(home.repo_path(name)) as repository,
            ):
                repository.remove_stale_temporaries()
                done = repository.compact(named_commits(store, name))
        except PvegitError as err:  # one damaged repository does not stop the others
            print(f"pvegit: {err}", file=sys.stderr)
            failed += 1
            continue
        store.audit(
            actor(),
            "gc",
            name,
            before=done.bytes_before,
            after=done.bytes_after,
            beyond_main=done.beyond_main,
        )
        kept = (
            f", kept {done.beyond_main} commit(s) main does not reach (named in state.db)"
            if done.beyond_main
            else ""
        )
        print(f"{name}: {done.bytes_before / 1e6:.2f} MB -> {done.bytes_after / 1e6:.2f} MB{kept}")
        if done.absent:
            print(
                f"pvegit: {name}: {len(done.absent)} commit(s) the run log or audit log names "
                f"are not in the repository (e.g. {done.absent[0][:10]}): see `pvegit verify "
                f"{name}`",
                file=sys.stderr,
            )
    return 1 if failed else 0


def cmd_mirror(arguments: argparse.Namespace) -> int:
    from pvegit.actions.mirror import push_mirror
    from pvegit.config.file import load_config
    from pvegit.errors import ConfigError

    home, _ = open_home(arguments)
    config = load_config(home.root, arguments.config)
    if not config.mirror:
        raise ConfigError(
            'no mirror set: add [server] mirror = "ssh://…/{host}.git" to pvegit.toml'
        )
    failed = 0
    for name in _repository_names(home, arguments.names):
        try:
            print(f"{name}: pushed to {push_mirror(home, name, config.mirror)}")
        except PvegitError as err:
            print(f"pvegit: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_verify(arguments: argparse.Namespace) -> int:
    from pvegit.actions.verify import verify_host

    home, store = open_home(arguments)
    hosts = [store.host(name) for name in arguments.names] if arguments.names else store.hosts()
    failed = 0
    for host in hosts:
        result = verify_host(home, store, host, node=not arguments.no_node)
        node = (
            f"{result.node_checked} files match the node"
            if result.node_checked
            else f"node not compared ({result.node_skipped or 'not asked'})"
        )
        if result.ok:
            print(f"{host.name}: ok, {result.objects} objects, {node}")
        else:
            failed += 1
            for problem in result.problems:
                print(f"pvegit: {host.name}: {problem}", file=sys.stderr)
        store.audit(actor(), "verify", host.name, ok=result.ok, problems=len(result.problems))
    return 1 if failed else 0


def cmd_reindex(arguments: argparse.Namespace) -> int:
    from pvegit.state.index import rebuild_index

    home, store = open_home(arguments)
    failed = 0
    for name in _repository_names(home, arguments.names):
        try:
            with open_repository(home, store, name) as repository:
                count = rebuild_index(store, repository, name)
        except PvegitError as err:  # one damaged repository does not stop the others
            print(f"pvegit: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {count} commits indexed")
    return 1 if failed else 0


def cmd_runs(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    settle_runs(home, store, arguments.name)
    runs = store.runs(arguments.name, limit=arguments.limit)
    if arguments.json:
        print_json([run.to_json() for run in runs])
        return 0
    print(
        f"{'RUN':>6} {'HOST':<14} {'STARTED':<19} {'STATUS':<9} {'SECS':>6} {'FILES':>6} "
        "COMMIT      ERROR"
    )
    for run in runs:
        duration = f"{run.duration:.2f}" if run.duration is not None else "-"
        print(
            f"{run.id:>6} {run.host:<14} {format_time(run.started_at):<19} {run.status:<9} "
            f"{duration:>6} {run.files:>6} {(run.commit_id or '-')[:10]:<11} {run.error or ''}"
        )
    return 0
