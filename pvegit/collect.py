"""Collect a node's configuration: a probe, one tar stream, the inventory.

Everything runs as POSIX shell on the node through one transport (one SSH
connection). Nothing from the node is trusted: the tar stream is parsed by
tarstream.py, command outputs are only stored as text.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pvegit.categories import Selection, matches_any
from pvegit.errors import CollectError, RefusedError
from pvegit.home import DEMO_NODES, HOME_TAG
from pvegit.inventory import COMMANDS
from pvegit.tarstream import Entry, display_path, read_tar_stream
from pvegit.transport import Transport

# Proxmox VE's own PATH for root; set explicitly, not left to the sshd build.
_ENVIRONMENT = "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
_TAR_ERROR = re.compile(
    rb"^tar: (?P<path>.+?): (?:Cannot|Could not) (?P<what>[a-z]+)[^:]*: (?P<why>.+)$"
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Probe:
    """What the node said about itself before anything was collected."""

    hostname: str
    uid: int
    pve_directory: bool
    pve_mounted: bool
    pve_readable: bool


@dataclass
class Collection:
    """Everything read from a node in one run."""

    probe: Probe
    entries: dict[str, Entry] = field(default_factory=dict)
    inventory: dict[str, bytes] = field(default_factory=dict)
    failed_commands: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bytes_read: int = 0


_PROBE = (
    "if [ -r etc/hostname ]; then h=$(head -n 1 etc/hostname); else h=$(hostname); fi\n"
    'echo "pvegit-probe hostname=$h" >&2\n'
    'echo "pvegit-probe uid=$(id -u)" >&2\n'
    "pd=0; pm=0; pr=0\n"
    "[ -d etc/pve ] && pd=1\n"
    # pmxcfs is a FUSE mount: another device than /etc.
    '[ "$pd" = 1 ] && [ "$(stat -c %d etc/pve)" != "$(stat -c %d etc)" ] && pm=1\n'
    "[ -r etc/pve/.version ] && pr=1\n"
    'echo "pvegit-probe pve_directory=$pd pve_mounted=$pm pve_readable=$pr" >&2\n'
)


def _parse_probe(stderr: bytes) -> Probe:
    values: dict[str, str] = {}
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("pvegit-probe "):
            body = line[len("pvegit-probe ") :]
            for field_text in [body] if body.startswith("hostname=") else body.split():
                key, _, value = field_text.partition("=")
                values[key] = value
    try:
        return Probe(
            hostname=values.get("hostname", "").strip(),
            uid=int(values["uid"]),
            pve_directory=values.get("pve_directory") == "1",
            pve_mounted=values.get("pve_mounted") == "1",
            pve_readable=values.get("pve_readable") == "1",
        )
    except (KeyError, ValueError) as err:
        raise CollectError(
            "the node did not answer pvegit's probe (is the login shell POSIX, and "
            "coreutils installed?)"
        ) from err


def probe_node(transport: Transport) -> Probe:
    """Ask the node for its name, the login's uid and the state of /etc/pve."""
    script = _ENVIRONMENT + f"cd {shlex.quote(transport.root)} || exit 98\n" + _PROBE
    result = transport.run(script)
    if result.exit_code == 98:
        raise CollectError(f"the node has no directory {transport.root}")
    return _parse_probe(result.stderr)


def check_pmxcfs(probe: Probe, transport: Transport, selection: Selection) -> None:
    """Refuse to snapshot a node whose /etc/pve is not pmxcfs (it would look empty)."""
    if not any(path == "etc/pve" or path.startswith("etc/pve/") for path in selection.paths):
        return
    if not probe.pve_directory:
        raise RefusedError(
            "/etc/pve does not exist: this is not a Proxmox VE node (or the path is wrong); "
            "leave out the 'cluster' category to back up a plain Debian host"
        )
    if transport.live and not probe.pve_mounted:
        raise RefusedError(
            "pmxcfs is not running: /etc/pve is a plain empty directory, not the cluster "
            "file system. Nothing was committed. On the node: systemctl status pve-cluster"
        )
    if not probe.pve_readable:
        where = "mounted but its .version is unreadable" if probe.pve_mounted else "empty"
        raise RefusedError(
            f"/etc/pve is {where}: pmxcfs is not serving the cluster file system. Nothing "
            "was committed. On the node: systemctl status pve-cluster"
            + ("" if transport.live else "; for a rescued disk use its config.db")
        )


# pvegit's own home is never collected, whatever the includes say: tar skips
# every directory holding the home's tag file (--exclude-tag-all), and an
# operand whose real location (symlinks resolved with `cd -P`, no fork per
# operand) lies in such a directory is dropped before tar opens it, with a
# "pvegit-skip" line on stderr. The home's demo-node/ folder is exempt: it
# holds the simulated nodes that `pvegit demo` backs up.
_HOME_GUARD = (
    "top=$PWD\n"
    "pvegit_home() {\n"  # POSIX sh has no locals: the h* names are the function's own
    '  if [ -d "$1" ] && [ ! -L "$1" ]; then hp=$1; hn=; '
    "else case $1 in */*) hp=${1%/*} ;; *) hp=. ;; esac; hn=/${1##*/}; fi\n"
    '  cd -P -- "$hp" 2>/dev/null || return 1\n'
    '  hr=$PWD$hn; hd=$PWD; cd "$top" || exit 98\n'
    "  while :; do\n"
    f'    if [ -e "$hd/{HOME_TAG}" ]; then\n'
    f'      case "$hr/" in "$hd/{DEMO_NODES}/"*) return 1 ;; esac\n'
    "      return 0\n"
    "    fi\n"
    '    [ -n "$hd" ] || return 1\n'
    "    hd=${hd%/*}\n"
    "  done\n"
    "}\n"
)


def _operands(paths: Sequence[str]) -> list[str]:
    """Drop paths that another (literal) path already covers, so tar reads them once."""
    literal = [path for path in paths if not any(char in path for char in "*?[")]
    kept = []
    for path in paths:
        covered = any(path != other and path.startswith(other + "/") for other in literal)
        if not covered:
            kept.append(path)
    return kept


def _needs_pve(selection: Selection) -> bool:
    return any(path == "etc/pve" or path.startswith("etc/pve/") for path in selection.paths)


def tar_script(root: str, selection: Selection, *, live: bool) -> str:
    """The shell script that probes the node, then streams the selected paths as one tar.

    The probe goes to stderr; when /etc/pve is wanted but pmxcfs is not serving
    it, the script stops (exit 97) before reading anything.
    """
    from pvegit.rescue import CONFIG_DB

    backup = live and CONFIG_DB in selection.paths
    paths = [path for path in selection.paths if not (backup and path == CONFIG_DB)]
    operands = " ".join(_operands(paths))  # validated: safe, globs stay unquoted
    excludes = " ".join(shlex.quote(f"--exclude={pattern}") for pattern in selection.excludes)
    tag = f"--exclude-tag-all={HOME_TAG}"
    consistent = ""
    if backup:
        # config.db is in WAL mode: a plain copy can miss the -wal; .backup is consistent.
        consistent = (
            "cdb=\ntrap 'rm -rf \"$cdb\"' EXIT\n"
            f"if [ -r {CONFIG_DB} ] && command -v sqlite3 >/dev/null 2>&1; then\n"
            '  cdb=$(mktemp -d) && mkdir -p "$cdb/var/lib/pve-cluster" && '
            f"sqlite3 {CONFIG_DB} \".backup '$cdb/{CONFIG_DB}'\" 2>/dev/null || "
            f'{{ echo "tar: {CONFIG_DB}: Cannot back up (sqlite3 .backup failed)" >&2; cdb=; }}\n'
            f'elif [ -e {CONFIG_DB} ]; then echo "tar: {CONFIG_DB}: Cannot open: '
            'Permission denied" >&2; fi\n'
        )
    guard = ""
    if _needs_pve(selection):
        mounted = ' || [ "$pm" != 1 ]' if live else ""
        guard = f'if [ "$pd" != 1 ]{mounted} || [ "$pr" != 1 ]; then exit 97; fi\n'
    return _ENVIRONMENT + (
        f"cd -P {shlex.quote(root)} || exit 98\n" + _PROBE + guard + _HOME_GUARD + "set --\n"
        f"for p in {operands}; do\n"
        '  if [ -e "$p" ] || [ -L "$p" ]; then\n'
        '    if pvegit_home "$p"; then echo "pvegit-skip $p" >&2; else set -- "$@" "$p"; fi\n'
        "  fi\n"
        "done\n"
        + (
            consistent + '[ "$#" -gt 0 ] || [ -n "$cdb" ] || exit 0\n'
            # Never --one-file-system: /etc/pve is a separate (FUSE) mount.
            f"tar -c -f - --format=gnu --hard-dereference --anchored {tag} {excludes} "
            f'${{cdb:+-C "$cdb" {CONFIG_DB} -C "$PWD"}} -- "$@"\n'
            if backup
            else '[ "$#" -gt 0 ] || exit 0\n'
            f"exec tar -c -f - --format=gnu --hard-dereference --anchored {tag} {excludes}"
            ' -- "$@"\n'
        )
    )


INVENTORY_TIMEOUT = 30  # seconds per command: `pvesm status` can hang on a dead NFS server


def inventory_script(boundary: str, names: Sequence[str]) -> str:
    """The shell script that runs the inventory commands in parallel, framed by ``boundary``.

    Each command runs under ``timeout``; a command missing on the node is
    reported as missing (not applicable), not as an error.
    """
    parts = [_ENVIRONMENT, "d=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$d\"' EXIT\n"]
    for name in names:
        command = COMMANDS[name]
        parts.append(
            f"if command -v {shlex.quote(command.program)} >/dev/null 2>&1; then\n"
            f"  ( timeout {INVENTORY_TIMEOUT} sh -c {shlex.quote(command.shell)} "
            f'>"$d/{name}" 2>/dev/null </dev/null; echo $? >"$d/{name}.rc" ) &\n'
            "fi\n"
        )
    parts.append("wait\n")
    for name in names:
        parts.append(
            f'if [ -e "$d/{name}.rc" ]; then\n'
            f"  printf '%s begin {name}\\n' {boundary}; cat \"$d/{name}\"\n"
            f'  printf \'\\n%s end {name} %s\\n\' {boundary} "$(cat "$d/{name}.rc")"\n'
            f"else printf '%s missing {name}\\n' {boundary}; fi\n"
        )
    return "".join(parts)


def parse_inventory(
    output: bytes, boundary: str, names: Sequence[str]
) -> tuple[dict[str, bytes], list[str]]:
    """Split the inventory output; return (normalized outputs, names of failed commands)."""
    text = output.decode("utf-8", "replace")
    outputs: dict[str, bytes] = {}
    failed: list[str] = []
    for name in names:
        if f"{boundary} missing {name}\n" in text:
            continue
        match = re.search(
            re.escape(f"{boundary} begin {name}\n")
            + r"(.*?)\n"
            + re.escape(f"{boundary} end {name} ")
            + r"(\d+)\n",
            text,
            re.DOTALL,
        )
        if not match:
            failed.append(name)
            continue
        if match.group(2) != "0":
            failed.append(name)
            continue
        outputs[name] = COMMANDS[name].normalize(match.group(1)).encode()
    return outputs, failed


def collect(
    transport: Transport,
    selection: Selection,
    *,
    progress: Progress | None = None,
    expected_files: int = 0,
    max_file_bytes: int | None = None,
) -> Collection:
    """Probe the node, refuse if pmxcfs is down, read files and inventory.

    The inventory commands run on a second channel of the same connection
    while the tar stream is read. Raises RefusedError (pmxcfs), CollectError
    (broken stream) or ConnectError.
    """
    report = progress or (lambda stage, done, total: None)
    pending = None
    boundary = "pvegit-" + secrets.token_hex(8)
    if selection.commands and transport.live:
        pending = transport.spawn(inventory_script(boundary, selection.commands))
    try:
        report("collect", 0, expected_files)
        limits = {} if max_file_bytes is None else {"max_file_bytes": max_file_bytes}
        rescue = _rescued_config_db(transport, selection)
        files = selection
        if rescue is not None:  # /etc/pve comes from config.db, the rest from the disk
            files = Selection(
                paths=tuple(path for path in selection.paths if not _under_pve(path)),
                excludes=selection.excludes,
                commands=selection.commands,
                include_secrets=selection.include_secrets,
            )
        script = tar_script(transport.root, files, live=transport.live)
        with transport.stream(script) as (stream, outcome):
            result = read_tar_stream(
                stream,
                requested=selection.paths,
                excludes=selection.excludes,
                on_member=lambda done: report("collect", done, expected_files),
                **limits,
            )
        probe = _parse_probe(outcome.stderr)
        if rescue is None:
            check_pmxcfs(probe, transport, selection)
        collection = Collection(probe=probe)
        collection.entries = result.entries
        collection.problems.extend(result.problems)
        collection.bytes_read = result.bytes_read
        _read_tar_errors(outcome.exit_code, outcome.stderr, collection)
        if rescue is not None:
            _add_config_db(collection, rescue, probe.hostname, selection)
        if pending is not None:
            report("inventory", len(collection.entries), len(collection.entries))
            answer = pending.result()
            pending = None
            outputs, failed = parse_inventory(answer.stdout, boundary, selection.commands)
            collection.inventory = outputs
            collection.failed_commands = failed
        return collection
    finally:
        if pending is not None:
            pending.cancel()


def _under_pve(path: str) -> bool:
    return path == "etc/pve" or path.startswith("etc/pve/")


def _rescued_config_db(transport: Transport, selection: Selection) -> Path | None:
    """Where a rescued disk's config.db is (or should be), if /etc/pve there is empty.

    Applies to a local root that is not the running system: pmxcfs does not
    serve its /etc/pve, so the database is the truth. A missing or corrupt one
    makes a partial run (the rest of the disk is still committed).
    """
    from pvegit.rescue import CONFIG_DB

    if transport.live or not _needs_pve(selection) or not hasattr(transport, "root"):
        return None
    root = Path(transport.root)
    if (root / "etc/pve/.version").exists() or not (root / "etc/pve").is_dir():
        return None
    return root / CONFIG_DB


def _add_config_db(collection: Collection, path: Path, hostname: str, selection: Selection) -> None:
    """Entries of /etc/pve rebuilt from config.db; a bad database makes a partial run."""
    from pvegit.rescue import ConfigDbError, read_config_db

    try:
        entries, problems = read_config_db(path, hostname or "localhost")
    except ConfigDbError as err:
        collection.problems.append(f"/etc/pve could not be rebuilt: {err}")
        collection.unreadable.append("etc/pve")
        return
    collection.problems.extend(problems)
    for name, entry in entries.items():
        if matches_any(selection.paths, name) and not matches_any(selection.excludes, name):
            collection.entries[name] = entry


def _read_tar_errors(exit_code: int, stderr: bytes, collection: Collection) -> None:
    if exit_code == 98:
        raise CollectError("the node's root directory is missing")
    if exit_code in (126, 127):
        raise CollectError("tar is not installed on the node (GNU tar is needed)")
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
        text = line.decode("utf-8", "backslashreplace")
        if match and b"Permission denied" in match.group("why"):
            path = match.group("path").decode("utf-8", "surrogateescape")
            collection.unreadable.append(path)
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
