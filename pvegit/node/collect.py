"""Collect a node's configuration: a probe, one tar stream, the inventory.

Everything is read on the node by pvegit's collector (program.py; asked
through collector.py, installed or inline) over one transport (one SSH
connection); the probe's answer is read by probe.py. Nothing from the node
is trusted: the tar stream is parsed by tarstream.py, command outputs are
only stored as text, and tar's messages are sorted here into unreadable
paths, warnings and problems.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pvegit.config.limits import InventoryLimits
from pvegit.config.selection import Selection, matches_any
from pvegit.errors import CollectError, RefusedError
from pvegit.node.allowlist import ALLOW_PATH, list_advice
from pvegit.node.collector import (
    allow_list_problem,
    collect_parameters,
    inventory_parameters,
    needs_pve,
    request,
    request_input,
)
from pvegit.node.inventorystream import read_inventory
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.node.probe import PMXCFS_CRASHED, Probe, check_pmxcfs, parse_probe
from pvegit.node.program import COLLECT_ROOTS, REFUSED
from pvegit.node.tarstream import Entry, display_path, read_tar_stream
from pvegit.node.transport import Transport
from pvegit.textsafe import printable

# GNU tar's messages for a path it could not read: "Cannot open: <why>", "Cannot
# savedir: <why>", "Read error at byte N, ...: <why>", "File shrank by N bytes; ...".
# tar names itself as it was invoked ("tar", or "/usr/bin/tar" from a wrapper).
_TAR_ERROR = re.compile(
    rb"^(?:[^\s:]*/)?tar: (?P<path>.+?): "
    rb"(?P<what>(?:Cannot|Could not) [a-z]+|Read error|File shrank)[^:]*(?:: (?P<why>.+))?$"
)

Progress = Callable[[str, int, int], None]


@dataclass
class Collection:
    """Everything read from a node in one run."""

    probe: Probe
    entries: dict[str, Entry] = field(default_factory=dict)
    inventory: dict[str, bytes] = field(default_factory=dict)
    failed_commands: list[str] = field(default_factory=list)
    over_limit_commands: dict[str, str] = field(default_factory=dict)  # name -> which limit
    unreadable: list[str] = field(default_factory=list)
    unreadable_why: dict[str, str] = field(default_factory=dict)  # path -> the node's reason
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bytes_read: int = 0


def collect(
    transport: Transport,
    selection: Selection,
    *,
    progress: Progress | None = None,
    expected_files: int = 0,
    max_file_bytes: int | None = None,
    inventory_limits: InventoryLimits | None = None,
) -> Collection:
    """Probe the node, refuse if pmxcfs is down, read files and inventory.

    The inventory commands run on a second channel of the same connection
    while the tar stream is read; their output is read within
    ``inventory_limits``. Raises RefusedError (pmxcfs), CollectError (broken
    stream) or ConnectError.
    """
    report = progress or (lambda stage, done, total: None)
    limits = inventory_limits or InventoryLimits()
    pending = None
    boundary = "pvegit-" + secrets.token_hex(8)
    if selection.commands and transport.live:
        asked = inventory_parameters(boundary, selection.commands, limits)
        pending = transport.spawn(
            request(transport, "inventory", asked), request_input(transport, asked)
        )
    try:
        report("collect", 0, expected_files)
        file_limits = {} if max_file_bytes is None else {"max_file_bytes": max_file_bytes}
        rescue = _rescued_config_db(transport, selection)
        files = selection
        if rescue is not None:  # /etc/pve comes from config.db, the rest from the disk
            files = Selection(
                paths=tuple(path for path in selection.paths if not is_pmxcfs_path(path)),
                excludes=selection.excludes,
                commands=selection.commands,
                include_secrets=selection.include_secrets,
            )
        asked = collect_parameters(transport.root, files, live=transport.live)
        script = request(transport, "collect", asked)
        with transport.stream(script, request_input(transport, asked)) as (stream, outcome):
            result = read_tar_stream(
                stream,
                requested=selection.paths,
                excludes=selection.excludes,
                on_member=lambda done: report("collect", done, expected_files),
                **file_limits,
            )
        if outcome.exit_code == REFUSED:  # before the probe, when the node has no list
            raise _refusal(outcome.stderr, transport.label)
        probe = parse_probe(outcome.stderr)
        if rescue is None:
            check_pmxcfs(probe, transport, selection)
        collection = Collection(probe=probe)
        collection.entries = result.entries
        collection.problems.extend(result.problems)
        collection.bytes_read = result.bytes_read
        _read_tar_errors(outcome.exit_code, outcome.stderr, collection)
        listed = allow_list_problem(transport, selection)
        if listed is not None:
            collection.warnings.append(listed)
        if rescue is None and needs_pve(selection):
            _check_pve_reads(collection)
        if rescue is not None:
            _add_config_db(collection, rescue, probe.hostname, selection)
        if pending is not None:
            report("inventory", len(collection.entries), len(collection.entries))
            inventory = read_inventory(pending.output(), boundary, selection.commands, limits)
            collection.inventory = inventory.outputs
            collection.failed_commands = inventory.failed
            collection.over_limit_commands = inventory.over_limit
        return collection
    finally:
        if pending is not None:
            pending.cancel()


def _rescued_config_db(transport: Transport, selection: Selection) -> Path | None:
    """Where a rescued disk's config.db is (or should be), if /etc/pve there is empty.

    Applies to a local root that is not the running system: pmxcfs does not
    serve its /etc/pve, so the database is the truth. A missing or corrupt one
    makes a partial run (the rest of the disk is still committed).
    """
    from pvegit.node.rescue import CONFIG_DB

    if transport.live or not needs_pve(selection) or not hasattr(transport, "root"):
        return None
    root = Path(transport.root)
    if (root / "etc/pve/.version").exists() or not (root / "etc/pve").is_dir():
        return None
    return root / CONFIG_DB


def _add_config_db(collection: Collection, path: Path, hostname: str, selection: Selection) -> None:
    """Entries of /etc/pve rebuilt from config.db; a bad database makes a partial run."""
    from pvegit.node.rescue import ConfigDbError, read_config_db

    try:
        rescued = read_config_db(path, hostname or "localhost")
    except ConfigDbError as err:
        collection.problems.append(f"/etc/pve could not be rebuilt: {err}")
        collection.unreadable.append("etc/pve")
        return
    collection.problems.extend(rescued.problems)
    collection.warnings.append(rescued.describe())
    for name, entry in rescued.entries.items():
        if matches_any(selection.paths, name) and not matches_any(selection.excludes, name):
            collection.entries[name] = entry


def _refusal(stderr: bytes, label: str) -> CollectError:
    """The error for a request the installed collector refused, in its words."""
    said = [line for line in stderr.splitlines() if line.startswith(b"pvegit-collect:")]
    why = said[-1].decode("utf-8", "replace") if said else "pvegit-collect: refused"
    return CollectError(
        f"the node's collector refused the request ({printable(why)}). An installed "
        f"collector reads only below /{', /'.join(COLLECT_ROOTS)}, and only what the "
        f"node's allow-list ({ALLOW_PATH}) allows. When this host's categories, includes "
        "or excludes changed, the list must follow: " + list_advice(label)
    )


def _read_tar_errors(exit_code: int, stderr: bytes, collection: Collection) -> None:
    """Sort tar's messages: a path it could not read (for any reason) is kept as it was,
    never recorded as deleted; races are warnings; anything else is a problem. (A
    refused request is raised before: ``_refusal``.)"""
    if exit_code == 98:
        raise CollectError("the node's root directory is missing")
    for line in stderr.splitlines():
        if line.startswith(b"pvegit-probe "):
            continue
        if line.startswith(b"pvegit-skip "):
            shown = display_path(line[len(b"pvegit-skip ") :].decode("utf-8", "surrogateescape"))
            collection.warnings.append(
                f"skipped /{shown}: it is in pvegit's own home, which is never collected"
            )
            continue
        match = _TAR_ERROR.match(line)
        text = printable(line.decode("utf-8", "surrogateescape"))  # the node's words, shown
        if match:
            path = match.group("path").decode("utf-8", "surrogateescape")
            why = printable((match.group("why") or match.group("what")).decode("utf-8", "replace"))
            if why == "No such file or directory":  # gone since the script looked
                collection.warnings.append(text)
                continue
            collection.unreadable.append(path)
            collection.unreadable_why[path] = why
            if "Permission denied" not in why:
                collection.problems.append(text)
        elif b"file changed as we read it" in line or b"file removed before we read" in line:
            collection.warnings.append(text)
        elif line.strip():
            collection.problems.append(text)
    if exit_code not in (0, 1) and not collection.entries:
        raise CollectError(
            f"tar on the node failed (exit status {exit_code}) and sent nothing: "
            + (collection.problems[0] if collection.problems else "no message")
        )
    if exit_code not in (0, 1) and not collection.unreadable and not collection.problems:
        collection.problems.append(f"tar exited with status {exit_code}")


def _check_pve_reads(collection: Collection) -> None:
    """Refuse a run that could not read /etc/pve itself, or lost pmxcfs half way.

    A non-root login that may not read priv/ is a partial run; any other failure to
    read below /etc/pve is pmxcfs crashing, hanging or going away during the run, and
    committing would record most of /etc/pve as deleted or stale.
    """
    for path in collection.unreadable:
        if not is_pmxcfs_path(path):
            continue
        why = collection.unreadable_why.get(path, "")
        if path != "etc/pve" and "Permission denied" in why:
            continue
        if PMXCFS_CRASHED in why:
            cause = "pmxcfs crashed during the run"
            advice = "journalctl -u pve-cluster (why it died), then systemctl restart pve-cluster"
        else:
            cause = "pmxcfs stopped serving /etc/pve during the run"
            advice = "systemctl status pve-cluster"
        raise RefusedError(
            f"{cause}: tar could not read /{display_path(path)} ({why}). Nothing was "
            f"committed. On the node: {advice}"
        )
