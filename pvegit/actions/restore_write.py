"""Write a restore plan onto a node, and read what the node has now.

The writes go to the node's restore-only program (node/restore_program.py) as
one stream; it puts each file in a temp file in its own directory and renames
it into place, so an interrupted restore leaves each file old or new, never cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from pvegit.actions.restore_plan import RestorePlan
from pvegit.config.selection import Selection, matches_any
from pvegit.errors import OutputTooLarge, RefusedError
from pvegit.node.access import RESTRICTED_KINDS
from pvegit.node.collector import collect_parameters, ensure_access, request, request_input
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.node.restore_program import (
    EXIT_BROKEN_STREAM,
    EXIT_NO_PMXCFS,
    EXIT_REFUSED,
    Change,
    RestoreChannel,
    encode_stream,
    parse_replies,
    refusal,
    reply_limit,
)
from pvegit.node.tarstream import read_tar_stream
from pvegit.node.transport import Transport


def read_live(
    transport: Transport, paths: Sequence[str], host_selection: Selection | None = None
) -> dict[str, tuple[bytes, bool]]:
    """What the node has now at ``paths``: path -> (content or link target, is a link).

    Read within the tar stream's limits (node/tarstream.py: 16 MiB a file, 256 MiB in all),
    so memory stays bounded whatever the node sends: a file over 16 MiB is left out (the
    preview shows it as created), a stream over 256 MiB raises CollectError. A hardened
    node reads only what its allow-list (the host's selection) holds: given
    ``host_selection``, a path wider than it (``etc``) is read as the selection's paths
    below it, and a path outside it is not asked for.
    """
    if host_selection is not None and ensure_access(transport) in RESTRICTED_KINDS:
        paths = _within(paths, host_selection)
    selection = Selection(paths=tuple(paths), excludes=(), commands=(), include_secrets=True)
    asked = collect_parameters(transport.root, selection, live=False)
    script = request(transport, "collect", asked)
    with transport.stream(script, request_input(transport, asked)) as (stream, _):
        result = read_tar_stream(stream, requested=selection.paths)
    return {
        path: (entry.data, entry.kind == "symlink")
        for path, entry in result.entries.items()
        if entry.kind != "dir"
    }


def _within(paths: Sequence[str], selection: Selection) -> list[str]:
    """``paths`` narrowed to what ``selection`` collects: a path it covers as it is, a
    wider one as the selection's paths below it; nothing for a path outside it."""
    kept: list[str] = []
    for path in paths:
        if matches_any(selection.paths, path):
            kept.append(path)
        else:
            kept += [inside for inside in selection.paths if inside.startswith(path + "/")]
    return list(dict.fromkeys(kept))


def changes_of(plan: RestorePlan) -> tuple[list[Change], dict[int, str]]:
    """The plan's writes as the stream's changes (numbered in plan order), and the writes
    the program would refuse (number -> why), which are not sent."""
    changes: list[Change] = []
    refused: dict[int, str] = {}
    for number, step in enumerate(plan.writes):
        why = refusal(step.path)
        if why is not None:
            refused[number] = why
        elif step.action == "delete":
            changes.append(Change(number, "delete", step.path))
        elif step.symlink:
            changes.append(Change(number, "link", step.path, step.data))
        else:
            info = step.info
            keep = is_pmxcfs_path(step.path) or info is None or info.mode is None
            changes.append(
                Change(
                    number,
                    "write",
                    step.path,
                    step.data,
                    mode=None if keep or info is None else info.mode,
                    owner=(info.owner if info and info.owner else "root"),
                    group=(info.group if info and info.group else "root"),
                )
            )
    return changes, refused


_PMXCFS_ERRORS = (
    (
        "Permission denied",
        "pmxcfs refused the write: no quorum? (/etc/pve is read-only "
        "without quorum: check 'pvecm status')",
    ),
    ("File too large", "pmxcfs refuses files over 1 MiB"),
    ("File exists", "pmxcfs refused: a guest with this id exists on another node"),
    ("Read-only file system", "the file system is read-only"),
)


def explain(stderr: str, path: str) -> str:
    """The last line of a node's error message for ``path``, or pmxcfs's in plain words."""
    for needle, words in _PMXCFS_ERRORS:
        if needle in stderr:
            return words if is_pmxcfs_path(path) or needle != "Permission denied" else needle
    return stderr.strip().splitlines()[-1] if stderr.strip() else "failed"


def apply_plan(channel: RestoreChannel, plan: RestorePlan) -> list[tuple[str, str | None]]:
    """Write the plan on the node through pvegit-restore; (path, error or None) for every
    write, in plan order.

    Raises RefusedError, with nothing written, when the plan touches /etc/pve and
    pmxcfs is not serving it, or when the node refuses the request; ConnectError when
    the connection cannot be used.
    """
    if not plan.writes:
        return []
    changes, refused = changes_of(plan)
    pmxcfs = any(is_pmxcfs_path(change.path) for change in changes)
    stream = encode_stream(changes, pmxcfs=pmxcfs)
    try:
        result = channel.call("restore", stream, limit=reply_limit(len(changes)))
    except OutputTooLarge as err:
        # The writes may have run (each file old or new): the snapshot after the
        # restore records what the node has, and its check names what differs.
        return [(step.path, f"not known whether written: {err}") for step in plan.writes]
    stderr = result.stderr.decode("utf-8", "replace")
    written = parse_replies(result.stdout)
    if not written and result.exit_code == EXIT_NO_PMXCFS:
        raise RefusedError(
            "pmxcfs is not running (/etc/pve is not mounted): nothing was "
            "written. On the node: systemctl status pve-cluster"
        )
    if not written and result.exit_code == EXIT_REFUSED:
        raise RefusedError(
            f"the node refused the restore ({stderr.strip() or 'no reason given'}): "
            "nothing was written"
        )
    broken = ""
    if result.exit_code == EXIT_BROKEN_STREAM:
        broken = f"the node's pvegit-restore stopped: {stderr.strip()}"
    elif result.exit_code == EXIT_NO_PMXCFS:
        broken = "not written: pmxcfs stopped serving /etc/pve during the restore"
    outcome: list[tuple[str, str | None]] = []
    for number, step in enumerate(plan.writes):
        if number in refused:
            outcome.append((step.path, refused[number]))
        elif number not in written:
            outcome.append((step.path, broken or "not written (the connection ended?)"))
        else:
            outcome.append((step.path, None if written[number] else explain(stderr, step.path)))
    return outcome
