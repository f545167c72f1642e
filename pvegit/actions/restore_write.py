"""Write a restore plan onto a node, and read what the node has now.

Each file goes to a temp file in its own directory and is renamed into place,
so an interrupted restore leaves each file old or new, never cut.
"""

from __future__ import annotations

import base64
import os
import shlex
from collections.abc import Sequence

from pvegit.actions.restore_plan import RestorePlan
from pvegit.config.selection import Selection
from pvegit.errors import CollectError, OutputTooLarge, RefusedError
from pvegit.node.collector import collect_parameters, request, request_input
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.node.tarstream import read_tar_stream
from pvegit.node.transport import MiB, OutputLimit, Transport


def read_live(transport: Transport, paths: Sequence[str]) -> dict[str, tuple[bytes, bool]]:
    """What the node has now at ``paths``: path -> (content or link target, is a link).

    Read within the tar stream's limits (node/tarstream.py: 16 MiB a file, 256 MiB in all),
    so memory stays bounded whatever the node sends: a file over 16 MiB is left out (the
    preview shows it as created), a stream over 256 MiB raises CollectError.
    """
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


def write_script(plan: RestorePlan, root: str = "/") -> str:
    """The shell script that writes the plan on the node below ``root``, one file at a time.

    It prints "pvegit-restore ok|error N" for the plan's N-th write and exits 1 when
    any write failed; each file goes through a temp file renamed into place.
    """
    lines = [
        "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"cd {shlex.quote(root)} || exit 98",
        "failed=0",
        'report() { printf "pvegit-restore %s %s\\n" "$1" "$2"; }',
    ]
    # Temporary files an interrupted restore left (never renamed into place): an
    # hour old means no restore is still writing them.
    for directory in sorted({os.path.dirname(step.path) or "." for step in plan.writes}):
        lines.append(
            f"find {shlex.quote('./' + directory)} -maxdepth 1 -type f -name '.pvegit-restore.*' "
            "-mmin +60 -exec rm -f -- {} + 2>/dev/null"
        )
    for number, step in enumerate(plan.writes):
        path = step.path  # relative to the root the script changed into
        quoted = shlex.quote(path)
        if step.action == "delete":
            lines.append(
                f"if rm -f -- {quoted}; then report ok {number}; "
                f"else report error {number}; failed=1; fi"
            )
            continue
        directory = shlex.quote(os.path.dirname(path) or ".")
        lines.append(f"mkdir -p -- {directory} 2>/dev/null")
        lines.append(
            f"t=$(mktemp -p {directory} .pvegit-restore.XXXXXX 2>&1) || "
            f'{{ report error {number}; echo "$t" >&2; failed=1; t=; }}'
        )
        lines.append('if [ -n "$t" ]; then')
        if step.symlink:
            target = shlex.quote(step.data.decode("utf-8", "surrogateescape"))
            lines.append(f'  rm -f "$t" && ln -s -- {target} "$t" && ok=1 || ok=0')
        else:
            payload = base64.b64encode(step.data).decode()
            lines.append(f'  echo {payload} | base64 -d > "$t" && ok=1 || ok=0')
            if not is_pmxcfs_path(step.path) and step.info and step.info.mode is not None:
                owner = shlex.quote(f"{step.info.owner or 'root'}:{step.info.group or 'root'}")
                lines.append(
                    f'  [ "$ok" = 1 ] && {{ chown -- {owner} "$t" 2>/dev/null; '
                    f'chmod -- {step.info.mode:o} "$t"; }}'
                )
        lines.append(
            f'  if [ "$ok" = 1 ] && mv -f "$t" {quoted}; then report ok {number}; '
            f'else rm -f "$t"; report error {number}; failed=1; fi'
        )
        lines.append("fi")
    lines.append("exit $failed")
    return "\n".join(lines) + "\n"


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


def apply_plan(transport: Transport, plan: RestorePlan) -> list[tuple[str, str | None]]:
    """Write the plan on the node; (path, error or None) for every write, in plan order.

    Raises RefusedError, with nothing written, when the plan touches /etc/pve and
    pmxcfs is not serving it; ConnectError when the connection cannot be used.
    """
    if not plan.writes:
        return []
    if any(is_pmxcfs_path(step.path) for step in plan.writes):
        from pvegit.node.probe import pmxcfs_serving

        try:
            serving = pmxcfs_serving(transport)  # asked of the collector: read only
        except CollectError as err:  # OutputTooLarge too: a node that floods the probe
            raise RefusedError(f"{err}. Nothing was written") from err
        if not serving:
            raise RefusedError(
                "pmxcfs is not running (/etc/pve is not mounted): nothing was "
                "written. On the node: systemctl status pve-cluster"
            )
    script = write_script(plan, transport.root).encode("utf-8", "surrogateescape")
    # One "pvegit-restore ok N" line a write; nothing else goes to stdout.
    limit = OutputLimit(64 * len(plan.writes) + MiB, "the restore's report of its writes")
    try:
        result = transport.run("sh -s", stdin=script, limit=limit)
    except OutputTooLarge as err:
        # The writes may have run (each file old or new): the snapshot after the
        # restore records what the node has, and its check names what differs.
        return [(step.path, f"not known whether written: {err}") for step in plan.writes]
    stderr = result.stderr.decode("utf-8", "replace")
    outcome: dict[int, str | None] = {}  # by the step's number in the script
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "pvegit-restore" and parts[2].isdigit():
            number = int(parts[2])
            if number < len(plan.writes):
                path = plan.writes[number].path
                outcome[number] = None if parts[1] == "ok" else explain(stderr, path)
    return [
        (step.path, outcome.get(number, "not written (the connection ended?)"))
        for number, step in enumerate(plan.writes)
    ]
