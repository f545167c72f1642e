"""The shell scripts pvegit runs on a node: the probe, and the one tar stream.

Plain POSIX sh, built here from a Selection and run through a transport
(collect.py reads what they send back, probe.py parses the probe). Paths
reach tar as operands that the selection validated (globs expand on the
node), excludes are quoted; everything else in the scripts is constant.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pvegit.config.home import DEMO_NODES, HOME_TAG
from pvegit.config.selection import Selection
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.node.transport import NODE_ENVIRONMENT

# How long the probe waits for /etc/pve to answer: a hung pmxcfs blocks every access.
PVE_PROBE_SECONDS = 10

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

# Who the node is and what /etc/pve is, as "pvegit-probe key=value" lines on stderr.
PROBE_SCRIPT = (
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


def needs_pve(selection: Selection) -> bool:
    """True when ``selection`` reads /etc/pve (or something below it)."""
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
    if needs_pve(selection):
        mounted = ' || [ "$pm" != 1 ]' if live else ""
        guard = f'if [ "$pd" != 1 ]{mounted} || [ "$pr" != 1 ]; then exit 97; fi\n'
    return NODE_ENVIRONMENT + (
        f"cd -P {shlex.quote(root)} || exit 98\n"
        + PROBE_SCRIPT
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
