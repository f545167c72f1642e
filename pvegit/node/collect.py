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

from pvegit.config.categories import Selection, matches_any
from pvegit.config.home import DEMO_NODES, HOME_TAG
from pvegit.errors import CollectError, RefusedError
from pvegit.node.inventory import InventoryLimits
from pvegit.node.inventorystream import inventory_script, read_inventory
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.node.tarstream import Entry, display_path, read_tar_stream
from pvegit.node.transport import NODE_ENVIRONMENT, MiB, OutputLimit, Transport
from pvegit.textsafe import printable

# GNU tar's messages for a path it could not read: "Cannot open: <why>", "Cannot
# savedir: <why>", "Read error at byte N, ...: <why>", "File shrank by N bytes; ...".
# tar names itself as it was invoked ("tar", or "/usr/bin/tar" from a wrapper).
_TAR_ERROR = re.compile(
    rb"^(?:[^\s:]*/)?tar: (?P<path>.+?): "
    rb"(?P<what>(?:Cannot|Could not) [a-z]+|Read error|File shrank)[^:]*(?:: (?P<why>.+))?$"
)

Progress = Callable[[str, int, int], None]


# How long the probe waits for /etc/pve to answer: a hung pmxcfs blocks every access.
PVE_PROBE_SECONDS = 10
_CRASHED = "Transport endpoint is not connected"


@dataclass(frozen=True)
class Probe:
    """What the node said about itself before anything was collected."""

    hostname: str
    uid: int
    pve_directory: bool
    pve_mounted: bool
    pve_readable: bool
    pve_error: str = ""  # why /etc/pve could not be read ("hung" when it did not answer)

    def pmxcfs_problem(self, *, live: bool) -> str | None:
        """Why /etc/pve is not pmxcfs serving the cluster file system, in plain words
        (None when it is). ``live``: the node itself, not a rescued disk."""
        if not self.pve_directory:
            return (
                "/etc/pve does not exist: this is not a Proxmox VE node (or the path is wrong); "
                "leave out the 'cluster' category to back up a plain Debian host"
            )
        if self.pve_error.startswith("hung"):
            return (
                f"pmxcfs is not answering: /etc/pve did not respond within {PVE_PROBE_SECONDS} s "
                "(pmxcfs hung). On the node: systemctl status pve-cluster; "
                "journalctl -u pve-cluster; systemctl restart pve-cluster"
            )
        if _CRASHED in self.pve_error:
            return (
                "pmxcfs has crashed: /etc/pve is still mounted but every access fails "
                f"({_CRASHED}). On the node: journalctl -u pve-cluster (why it died), then "
                "systemctl restart pve-cluster"
            )
        if live and not self.pve_mounted:
            return (
                "pmxcfs is not running: /etc/pve is a plain empty directory, not the cluster "
                "file system. On the node: systemctl status pve-cluster"
            )
        if not self.pve_readable:
            if "Permission denied" in self.pve_error:
                return (
                    f"the login (uid {self.uid}) may not read /etc/pve ({self.pve_error}): "
                    "log in as root, or add the backup user to the group www-data"
                )
            where = (
                f"mounted but unreadable ({self.pve_error or 'no .version'})"
                if self.pve_mounted
                else "empty"
            )
            return (
                f"/etc/pve is {where}: pmxcfs is not serving the cluster file system. On the "
                "node: systemctl status pve-cluster"
                + ("" if live else "; for a rescued disk use its config.db")
            )
        return None


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


# What /etc/pve is, asked in a shell of its own under a hard time limit: on a hung
# pmxcfs every stat or read of it blocks (a shell builtin `[ -d ]` too). It prints
# "DIRECTORY MOUNTED READABLE ERROR": 1/0 flags, then the first error message.
_PVE_PROBE = (
    "pd=0; pm=0; pr=0; pe=\n"
    "t=$(stat -c %F etc/pve 2>&1)\n"
    'case "$t" in\n'
    "  directory) pd=1 ;;\n"
    '  *"No such file"*) ;;\n'
    '  *"symbolic link"*|*file*) pe="etc/pve is not a directory ($t)" ;;\n'
    "  *) pd=1; pm=1; pe=$t ;;\n"  # there, but even stat fails: a dead FUSE mount
    "esac\n"
    'if [ "$pd" = 1 ] && [ -z "$pe" ]; then\n'
    # pmxcfs is a FUSE mount: another device than /etc.
    '  [ "$(stat -c %d etc/pve)" != "$(stat -c %d etc)" ] && pm=1\n'
    # Read, not only ask access(): FUSE answers access() from cached attributes even
    # after pmxcfs died; reading the file and the directory reaches pmxcfs itself.
    "  if pe=$(cat etc/pve/.version 2>&1 >/dev/null) && pe=$(ls -A etc/pve 2>&1 >/dev/null)\n"
    "  then pr=1; pe=; fi\n"
    "fi\n"
    'printf "%s %s %s %s" "$pd" "$pm" "$pr" "$(printf %s "$pe" | head -n 1)"\n'
)

_PROBE = (
    "if [ -r etc/hostname ]; then h=$(head -n 1 etc/hostname); else h=$(hostname); fi\n"
    'echo "pvegit-probe hostname=$h" >&2\n'
    'echo "pvegit-probe uid=$(id -u)" >&2\n'
    f"pp=$(timeout -s KILL {PVE_PROBE_SECONDS} sh -c {shlex.quote(_PVE_PROBE)} 2>/dev/null)\n"
    'case "$pp" in\n'
    '  [01]" "[01]" "[01]*) pd=${pp%% *}; pp=${pp#* }; pm=${pp%% *}; pp=${pp#* }\n'
    "                       pr=${pp%% *}; pe=${pp#?}; pe=${pe# } ;;\n"
    f'  *) pd=1; pm=1; pr=0; pe="hung: no answer within {PVE_PROBE_SECONDS} s" ;;\n'
    "esac\n"
    'echo "pvegit-probe pve_directory=$pd pve_mounted=$pm pve_readable=$pr" >&2\n'
    'echo "pvegit-probe pve_error=$pe" >&2\n'
)


# Which operands to hand to tar. A path that is not there is left out (tar would fail
# on it); but "not there" must mean absent, not unreadable: a path whose folder cannot
# be read (a login without the rights, a dead mount) goes to tar, which then says why,
# and the path is kept as it was instead of being recorded as deleted. /etc/pve itself
# always goes (the probe found it): on a pmxcfs that died since, `[ -e ]` is false.
_PRESENT = (
    "present() {\n"
    '  if [ -e "$1" ] || [ -L "$1" ] || [ "$1" = etc/pve ]; then return 0; fi\n'
    "  a=$1\n"
    "  while :; do\n"
    '    case "$a" in */*) a=${a%/*} ;; *) a=. ;; esac\n'
    '    if [ -e "$a" ]; then\n'
    '      if [ -d "$a" ] && [ -r "$a" ] && [ -x "$a" ]; then return 1; fi\n'
    "      return 0\n"
    "    fi\n"
    '    if [ "$a" = . ]; then return 1; fi\n'
    "  done\n"
    "}\n"
)


def _parse_probe(stderr: bytes) -> Probe:
    values: dict[str, str] = {}
    # What the node says about itself is shown to users: no control characters.
    for line in printable(stderr.decode("utf-8", "replace"), lines=True).splitlines():
        if line.startswith("pvegit-probe "):
            body = line[len("pvegit-probe ") :]
            whole = body.startswith(("hostname=", "pve_error="))
            for field_text in [body] if whole else body.split():
                key, _, value = field_text.partition("=")
                values[key] = value
    try:
        return Probe(
            hostname=values.get("hostname", "").strip(),
            uid=int(values["uid"]),
            pve_directory=values.get("pve_directory") == "1",
            pve_mounted=values.get("pve_mounted") == "1",
            pve_readable=values.get("pve_readable") == "1",
            pve_error=values.get("pve_error", "").strip(),
        )
    except (KeyError, ValueError) as err:
        raise CollectError(
            "the node did not answer pvegit's probe (is the login shell POSIX, and "
            "coreutils installed?)"
        ) from err


# The probe answers on stderr (kept within MAX_STDERR); its stdout stays empty.
_PROBE_OUTPUT = OutputLimit(MiB, "pvegit's probe")
# One line (`pveversion -v` would be ~2 KiB), shown as it is on a page and a terminal.
_VERSION_OUTPUT = OutputLimit(64 * 1024, "the PVE version (pveversion)")


def probe_node(transport: Transport) -> Probe:
    """Ask the node for its name, the login's uid and the state of /etc/pve.

    Raises CollectError (OutputTooLarge for a node that floods the answer) or ConnectError.
    """
    script = NODE_ENVIRONMENT + f"cd {shlex.quote(transport.root)} || exit 98\n" + _PROBE
    result = transport.run(script, limit=_PROBE_OUTPUT)
    if result.exit_code == 98:
        raise CollectError(f"the node has no directory {transport.root}")
    return _parse_probe(result.stderr)


def pve_version(transport: Transport) -> str:
    """What ``pveversion`` says on the node, "" when it says nothing (not a PVE node).

    Raises OutputTooLarge past 64 KiB, ConnectError when the connection drops.
    """
    result = transport.run("pveversion 2>/dev/null", limit=_VERSION_OUTPUT)
    return result.stdout.decode("utf-8", "replace").strip()


def check_pmxcfs(probe: Probe, transport: Transport, selection: Selection) -> None:
    """Refuse to snapshot a node whose /etc/pve is not pmxcfs serving (it would look empty,
    or fail half way and look deleted)."""
    if not _needs_pve(selection):
        return
    problem = probe.pmxcfs_problem(live=transport.live)
    if problem is not None:
        raise RefusedError(f"{problem}. Nothing was committed.")


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
    return any(is_pmxcfs_path(path) for path in selection.paths)


def tar_script(root: str, selection: Selection, *, live: bool) -> str:
    """The shell script that probes the node, then streams the selected paths as one tar.

    The probe goes to stderr; when /etc/pve is wanted but pmxcfs is not serving
    it, the script stops (exit 97) before reading anything.
    """
    from pvegit.node.rescue import CONFIG_DB

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
    return NODE_ENVIRONMENT + (
        f"cd -P {shlex.quote(root)} || exit 98\n"
        + _PROBE
        + guard
        + _PRESENT
        + _HOME_GUARD
        + "set --\n"
        f"for p in {operands}; do\n"
        '  if present "$p"; then\n'
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
        pending = transport.spawn(inventory_script(boundary, selection.commands, limits))
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
        script = tar_script(transport.root, files, live=transport.live)
        with transport.stream(script) as (stream, outcome):
            result = read_tar_stream(
                stream,
                requested=selection.paths,
                excludes=selection.excludes,
                on_member=lambda done: report("collect", done, expected_files),
                **file_limits,
            )
        probe = _parse_probe(outcome.stderr)
        if rescue is None:
            check_pmxcfs(probe, transport, selection)
        collection = Collection(probe=probe)
        collection.entries = result.entries
        collection.problems.extend(result.problems)
        collection.bytes_read = result.bytes_read
        _read_tar_errors(outcome.exit_code, outcome.stderr, collection)
        if rescue is None and _needs_pve(selection):
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

    if transport.live or not _needs_pve(selection) or not hasattr(transport, "root"):
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


def _read_tar_errors(exit_code: int, stderr: bytes, collection: Collection) -> None:
    """Sort tar's messages: a path it could not read (for any reason) is kept as it was,
    never recorded as deleted; races are warnings; anything else is a problem."""
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
        if _CRASHED in why:
            cause = "pmxcfs crashed during the run"
            advice = "journalctl -u pve-cluster (why it died), then systemctl restart pve-cluster"
        else:
            cause = "pmxcfs stopped serving /etc/pve during the run"
            advice = "systemctl status pve-cluster"
        raise RefusedError(
            f"{cause}: tar could not read /{display_path(path)} ({why}). Nothing was "
            f"committed. On the node: {advice}"
        )
