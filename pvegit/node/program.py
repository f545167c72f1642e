"""The text of ``pvegit-collect``: the one program pvegit runs on a node to read it.

A POSIX sh program, generated here (one source of truth) from the probe, the
tar stream and the inventory commands. A hardened node has it installed as
``/usr/local/sbin/pvegit-collect``, the forced command of pvegit's collect
key; a legacy node (an unrestricted key) and a local root get the very same
text inline (``sh -c PROGRAM pvegit-collect-inline REQUEST 1``). pvegit checks
the installed copy's version and sha256 on every connection (collector.py).

A request is ``pvegit <request> 1`` in ``SSH_ORIGINAL_COMMAND`` (or the two
arguments ``<request> 1``); nothing else runs. Parameters come on stdin as
``key value`` lines, are validated on the node and are never evaluated.
Requests: ``version``, ``probe``, ``pveversion``, ``collect`` (the probe on
stderr, then one tar stream; config.db as a consistent ``sqlite3 .backup``),
``inventory`` (the fixed command list, framed as inventorystream.py reads)
and ``checksums`` (sha256 of NUL-separated names, for verify). Anything else
is refused with one ``pvegit-collect: refused: ...`` line on stderr, exit
status 96, and logged (syslog through ``logger`` when /dev/log is there, else
/var/log/pvegit-collect.log).

When the program is installed (not inline) it reads only below
``COLLECT_ROOTS`` (the real path, symlinks resolved), never the password
hashes (``NEVER_READ``), and only what the node's allow-list allows
(allowlist.py: the host's selection, written at harden time), whatever the
request says. Its ``version`` answer is ``pvegit-collect VERSION SHA256
LIST-SHA256`` (``none`` for no list); inline, ``pvegit-collect VERSION inline``.
"""

from __future__ import annotations

import functools
import hashlib
import shlex

from pvegit.config.home import DEMO_NODES, HOME_TAG
from pvegit.node import allowlist
from pvegit.node.inventory import COMMANDS

VERSION = 2
PROTOCOL = 1
INSTALLED_PATH = "/usr/local/sbin/pvegit-collect"
INLINE_NAME = "pvegit-collect-inline"  # $0 of an inline run: no roots enforced
LOG_FILE = "/var/log/pvegit-collect.log"
REFUSED = 96  # the exit status of a refused request
PVE_MISSING = 97  # /etc/pve wanted, pmxcfs not serving it
ROOT_MISSING = 98
REQUESTS = ("version", "probe", "pveversion", "collect", "inventory", "checksums")
# Where an installed collector may read (real paths, relative to /): every path of
# the catalogue lies below one of them (tests/unit/test_collector.py checks it).
COLLECT_ROOTS = ("etc", "root/.ssh", "usr/local", "var/spool/cron", "var/lib/pve-cluster/config.db")
# Never sent by an installed collector, whatever is asked: the password hashes.
NEVER_READ = ("etc/shadow", "etc/shadow-", "etc/gshadow", "etc/gshadow-", "etc/security/opasswd")
MAX_PARAMETERS = 256 * 1024  # bytes of `key value` lines read from stdin
# How long the probe waits for /etc/pve to answer: a hung pmxcfs blocks every access.
PVE_PROBE_SECONDS = 10
INVENTORY_TIMEOUT = 30  # seconds per command: `pvesm status` can hang on a dead NFS server
CONFIG_DB = "var/lib/pve-cluster/config.db"

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
_PROBE = (
    "probe() {\n"
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
    "}\n"
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


def _patterns(paths: tuple[str, ...], *, below: bool) -> str:
    """A case pattern list matching ``paths`` (and what lies below them, if ``below``)."""
    parts = []
    for path in paths:
        parts.append(f'"{path}"')
        if below:
            parts.append(f'"{path}/"*')
    return "|".join(parts)


def _roots_check() -> str:
    """allowed NAME: may an installed collector read NAME (after globbing)? Where it
    really is counts, so a symlink cannot lead it elsewhere: the folder it is in for a
    tar operand (tar archives a link as a link), the file itself with ``follow=1`` (a
    checksum reads what a link leads to). Both the name and that place must be on the
    allow-list, and a folder reached through a link is refused (tar would name what is
    inside after the link, past the list's excludes). Sets ``r``, the place, for
    ``excluded``."""
    absolute = tuple("/" + root for root in COLLECT_ROOTS)
    never = tuple("/" + path for path in NEVER_READ)
    return (
        "allowed() {\n"
        '  [ "$inline" = 1 ] && return 0\n'
        # Where NAME really is, without a fork in the common case: its folder's real path
        # (cd -P) and its last name; with follow=1 a symlink is followed (readlink -f). A
        # folder this login cannot enter: readlink -m resolves what it can, and what it
        # cannot, this login's tar cannot read through either.
        '  if [ "${follow:-0}" = 1 ] && [ -L "$1" ]; then\n'
        '    r=$(readlink -f -- "$1" 2>/dev/null || readlink -m -- "$1") || return 1\n'
        "  else\n"
        '    case "$1" in */*) rd=${1%/*} ;; *) rd=. ;; esac\n'
        "    ro=$PWD\n"
        '    if cd -P -- "$rd" 2>/dev/null; then r=${PWD%/}/${1##*/}; cd -- "$ro" || exit 98\n'
        '    else r=$(readlink -m -- "$rd") || return 1; r=${r%/}/${1##*/}; fi\n'
        "  fi\n"
        f'  case "$r" in {_patterns(never, below=False)}) return 1 ;; esac\n'
        f'  case "$r" in {_patterns(absolute, below=True)}) ;; *) return 1 ;; esac\n'
        '  listed "$1" "$a_paths" && listed "${r#/}" "$a_paths" || return 1\n'
        '  if [ "$r" != "/$1" ] && [ -d "$1" ] && [ ! -L "$1" ]; then return 1; fi\n'
        "}\n"
        # Called after `allowed`: the allow-list excludes NAME, by its name or its place.
        "excluded() {\n"
        '  [ "$inline" = 1 ] && return 1\n'
        '  listed "$1" "$a_excludes" || listed "${r#/}" "$a_excludes"\n'
        "}\n"
    )


# A path or pattern as pvegit sends it: relative, no `..`, no leading `-`, and (for a
# path: globs expand on the node) only the characters the selection accepts.
_VALIDATION = (
    "valid_name() {\n"
    '  case "$1" in ""|/*|-*|..|../*|*/..|*/../*) return 1 ;; esac\n'
    "}\n"
    "valid_path() {\n"
    '  valid_name "$1" || return 1\n'
    '  case "$1" in *[!]A-Za-z0-9._+@%,:=/*?[-]*|*/|*//*|./*|*/./*|*/.|.) return 1 ;; esac\n'
    '  [ "$inline" = 1 ] && return 0\n'
    f'  case "$1" in {_patterns(COLLECT_ROOTS, below=True)}) return 0 ;; esac\n'
    "  return 1\n"
    "}\n"
)

_HEADER = (
    "#!/bin/sh\n"
    "# pvegit-collect @VERSION@\n"
    "# pvegit's read-only collector (generated by pvegit/node/program.py; do not edit:\n"
    "# pvegit checks its sha256). The forced command of pvegit's collect key: it\n"
    '# answers only "pvegit <request> @PROTOCOL@" and refuses everything else.\n'
    # Proxmox VE's PATH for root, set here (not left to the sshd build); inline, after
    # the caller's own (a local run finds the programs its user finds).
    "std=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    'if [ "$0" = @INLINE@ ]; then inline=1; PATH=${PATH:+$PATH:}$std\n'
    "else inline=0; PATH=$std; fi\n"
    "export LC_ALL=C PATH\n"
    "unset CDPATH\n"  # a relative `cd` goes where it says, whatever the caller's shell had
    "nl='\n'\n"
    "log() {\n"
    '  m=$(printf "%s" "$1" | tr -c "[:print:]" "?" | head -c 400)\n'
    "  c=${SSH_CLIENT%% *}\n"
    '  if [ -S /dev/log ] && logger -t pvegit-collect -p auth.warning -- "from ${c:-?}: $m" '
    "2>/dev/null; then return 0; fi\n"
    '  printf "%s pvegit-collect from %s: %s\\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${c:-?}" '
    '"$m" >>@LOG@ 2>/dev/null\n'
    "}\n"
    "refuse() {\n"
    '  echo "pvegit-collect: refused: $1" >&2\n'
    '  log "refused: $1"\n'
    "  exit @REFUSED@\n"
    "}\n"
    'if [ "$#" -gt 0 ]; then\n'
    '  [ "$#" -eq 2 ] || refuse "a request is two words"\n'
    '  req="pvegit $1 $2"\n'
    'elif [ -n "${SSH_ORIGINAL_COMMAND+x}" ]; then req=$SSH_ORIGINAL_COMMAND\n'
    'else refuse "no request: this key runs only pvegit'
    "'"
    's collector (no shell)"\n'
    "fi\n"
    'case "$req" in\n'
    "@CASES@"
    '  *) refuse "not a pvegit request: $req" ;;\n'
    "esac\n"
    # A backup user whose sudo rights cover only this program reads as root through it.
    'if [ "$inline" = 0 ] && [ "$op" != version ] && [ "$(id -u)" != 0 ] && '
    '[ -z "${SUDO_USER:-}" ] && command -v sudo >/dev/null 2>&1 && '
    'sudo -n -l "$0" >/dev/null 2>&1; then\n'
    '  exec sudo -n "$0" "$op" @PROTOCOL@\n'
    "fi\n"
)


def _read_parameters() -> str:
    """params: read `key value` lines (at most MAX_PARAMETERS bytes) from stdin."""
    return (
        "params() {\n"
        "  root=/ live=0 paths= excludes= names= boundary= keep=\n"
        f"  p_in=$(head -c {MAX_PARAMETERS})\n"
        "  while IFS= read -r line; do\n"
        '    [ -n "$line" ] || continue\n'
        "    k=${line%% *}; v=${line#* }\n"
        '    case "$k" in\n'
        '      root) case "$v" in /*) root=$v ;; *) refuse "root: not absolute" ;; esac\n'
        '            [ "$inline" = 1 ] || [ "$v" = / ] || refuse "root: only / is read" ;;\n'
        '      live) case "$v" in 0|1) live=$v ;; *) refuse "live: 0 or 1" ;; esac ;;\n'
        '      path) valid_path "$v" || refuse "path not allowed: $v"; paths=$paths$v$nl ;;\n'
        '      exclude) valid_name "$v" || refuse "exclude not allowed: $v"\n'
        "               excludes=$excludes--exclude=$v$nl ;;\n"
        '      command) command_line "$v" || refuse "no such inventory command: $v"\n'
        "               names=$names$v$nl ;;\n"
        '      boundary) case "$v" in *[!A-Za-z0-9-]*|"") refuse "boundary: letters, digits, -" ;;'
        " esac\n"
        "                boundary=$v ;;\n"
        '      keep) case "$v" in *[!0-9]*|""|?????????*) refuse "keep: a number" ;; esac\n'
        "            keep=$v ;;\n"
        '      *) refuse "unknown parameter: $k" ;;\n'
        "    esac\n"
        "  done <<PVEGIT_PARAMETERS\n"
        "$p_in\n"
        "PVEGIT_PARAMETERS\n"
        '  cd -P -- "$root" 2>/dev/null || exit 98\n'
        "  top=$PWD\n"
        "}\n"
    )


def _commands() -> str:
    """command_line NAME: sets `prog` and `cmd` for one of the fixed inventory commands."""
    lines = ["command_line() {", '  case "$1" in']
    for name, command in COMMANDS.items():
        lines.append(
            f"    {name}) prog={shlex.quote(command.program)}; cmd={shlex.quote(command.shell)} ;;"
        )
    lines += ["    *) return 1 ;;", "  esac", "}"]
    return "\n".join(lines) + "\n"


_NOT_LISTED = f" (not on this node's allow-list, {allowlist.ALLOW_PATH}, or not below its roots)"
_TAR = f"tar -c -f - --format=gnu --hard-dereference --anchored --exclude-tag-all={HOME_TAG}"
_COLLECT = (
    "do_collect() {\n"
    "  load_allow\n"
    "  params\n"
    "  probe\n"
    "  needpve=0; backup=0\n"
    "  for p in $paths; do\n"  # IFS is a newline here
    '    case "$p" in etc/pve|etc/pve/*) needpve=1 ;; esac\n'
    f'    [ "$p" = {CONFIG_DB} ] && [ "$live" = 1 ] && backup=1\n'
    "  done\n"
    '  if [ "$needpve" = 1 ]; then\n'
    '    if [ "$pd" != 1 ] || [ "$pr" != 1 ] || { [ "$live" = 1 ] && [ "$pm" != 1 ]; }; '
    f"then exit {PVE_MISSING}; fi\n"
    "  fi\n"
    '  if [ "$backup" = 1 ] && [ "$inline" = 0 ] && ! listed '
    f'{CONFIG_DB} "$a_paths"; then\n'
    f'    refuse "{CONFIG_DB}{_NOT_LISTED}"\n'
    "  fi\n"
    "  set --\n"
    # The operands' globs expand on the node (names only, never evaluated), once: the
    # loop's body runs with globbing off again (the allow-list's patterns are patterns).
    "  set +f\n"
    "  for p in $paths; do\n"
    "    set -f\n"
    f'    [ "$backup" = 1 ] && [ "$p" = {CONFIG_DB} ] && continue\n'
    '    if present "$p"; then\n'
    f'      allowed "$p" || refuse "$p{_NOT_LISTED}"\n'
    '      if excluded "$p"; then continue; fi\n'
    '      if pvegit_home "$p"; then echo "pvegit-skip $p" >&2; else set -- "$@" "$p"; fi\n'
    "    fi\n"
    "  done\n"
    "  set -f\n"
    '  if [ "$inline" = 0 ]; then\n'
    f"    for n in {' '.join(NEVER_READ)}; do excludes=$excludes--exclude=$n$nl; done\n"
    "    for n in $a_excludes; do excludes=$excludes--exclude=$n$nl; done\n"
    "  fi\n"
    "  cdb=\n"
    '  if [ "$backup" = 1 ]; then\n'
    # config.db is in WAL mode: a plain copy can miss the -wal; .backup is consistent.
    "    trap 'rm -rf \"$cdb\"' EXIT\n"
    f"    if [ -r {CONFIG_DB} ] && command -v sqlite3 >/dev/null 2>&1; then\n"
    '      cdb=$(mktemp -d) && mkdir -p "$cdb/var/lib/pve-cluster" && '
    f"sqlite3 {CONFIG_DB} \".backup '$cdb/{CONFIG_DB}'\" 2>/dev/null || "
    f'{{ echo "tar: {CONFIG_DB}: Cannot back up (sqlite3 .backup failed)" >&2; cdb=; }}\n'
    f'    elif [ -e {CONFIG_DB} ]; then echo "tar: {CONFIG_DB}: Cannot open: '
    'Permission denied" >&2; fi\n'
    "  fi\n"
    '  [ "$#" -gt 0 ] || [ -n "$cdb" ] || exit 0\n'
    # Never --one-file-system: /etc/pve is a separate (FUSE) mount.
    '  if [ -n "$cdb" ]; then\n'
    f'    {_TAR} $excludes -C "$cdb" {CONFIG_DB} -C "$PWD" -- "$@"\n'
    "  else\n"
    f'    exec {_TAR} $excludes -- "$@"\n'
    "  fi\n"
    "}\n"
)


def _inventory() -> str:
    """do_inventory: each named command under `timeout`, cut one byte past the limit,
    then framed one after the other (inventorystream.py's format)."""
    return (
        "do_inventory() {\n"
        "  load_allow\n"
        "  params\n"
        '  [ -n "$boundary" ] && [ -n "$keep" ] || refuse "inventory: boundary and keep needed"\n'
        "  d=$(mktemp -d) || exit 1\n"
        "  trap 'rm -rf \"$d\"' EXIT\n"
        "  for name in $names; do\n"
        '    allows_command "$name" || '
        'refuse "inventory: $name is not on this node\'s allow-list"\n'
        "  done\n"
        "  for name in $names; do\n"
        '    command_line "$name"\n'
        '    if command -v "$prog" >/dev/null 2>&1; then\n'
        f'      ( ( timeout {INVENTORY_TIMEOUT} sh -c "$cmd" 2>/dev/null </dev/null; '
        'echo $? >"$d/$name.rc" ) | head -c $((keep + 1)) >"$d/$name" ) &\n'
        "    fi\n"
        "  done\n"
        "  wait\n"
        "  for name in $names; do\n"
        '    if [ -e "$d/$name.rc" ]; then\n'
        '      s=$(wc -c <"$d/$name")\n'
        '      if [ "$s" -gt "$keep" ]; then printf "%s over %s\\n" "$boundary" "$name"\n'
        '      else printf "%s begin %s %s\\n" "$boundary" "$name" $s; cat "$d/$name"\n'
        '        printf "%s end %s %s\\n" "$boundary" "$name" "$(cat "$d/$name.rc")"; fi\n'
        '    else printf "%s missing %s\\n" "$boundary" "$name"; fi\n'
        "  done\n"
        "}\n"
    )


# checksums: the first line is "root DIR", then NUL-separated names; each name is
# checked in a shell of its own (xargs hands them over as arguments, never as code).
_HASH = (
    "set -f; IFS='\n'; follow=1\n"
    'for p; do case "$p" in ""|/*|-*|..|../*|*/..|*/../*) continue ;; esac; '
    'if allowed "$p" && ! excluded "$p"; then sha256sum -z -- "$p" 2>/dev/null; fi; done'
)


def _checksums() -> str:
    """do_checksums: the sha256 of each name sent, for verify."""
    return (
        "do_checksums() {\n"
        "  load_allow\n"
        "  IFS= read -r line || exit 0\n"
        '  case "$line" in "root "/*) root=${line#root } ;; *) refuse "checksums: root first" ;;'
        " esac\n"
        '  [ "$inline" = 1 ] || [ "$root" = / ] || refuse "root: only / is read"\n'
        '  cd -P -- "$root" 2>/dev/null || exit 98\n'
        "  export inline\n"
        "  head -c 67108864 | xargs -0 -r sh -c "
        f"{shlex.quote(allowlist.LISTED + _roots_check() + _HASH)} pvegit-hash\n"
        "  true\n"
        "}\n"
    )


@functools.cache
def program_text() -> str:
    """The collector's text, the same on every node and inline."""
    cases = "".join(f'  "pvegit {name} {PROTOCOL}") op={name} ;;\n' for name in REQUESTS)
    header = _HEADER
    for marker, value in (
        ("@VERSION@", str(VERSION)),
        ("@PROTOCOL@", str(PROTOCOL)),
        ("@LOG@", LOG_FILE),
        ("@REFUSED@", str(REFUSED)),
        ("@INLINE@", INLINE_NAME),
        ("@CASES@", cases),
    ):
        header = header.replace(marker, value)
    body = (
        "set -f\nIFS=$nl\n"
        + _VALIDATION
        + _roots_check()
        + _commands()
        + allowlist.SHELL
        + _read_parameters()
        + _PROBE
        + _PRESENT
        + _HOME_GUARD
        + _COLLECT
        + _inventory()
        + _checksums()
        + 'case "$op" in\n'
        f'  version) if [ "$inline" = 1 ]; then echo "pvegit-collect {VERSION} inline"; else\n'
        f'    echo "pvegit-collect {VERSION} $(sha256sum <"$0" | cut -c 1-64) '
        '$(allow_digest)"; fi ;;\n'
        "  probe) params; probe ;;\n"
        "  pveversion) pveversion 2>/dev/null ;;\n"
        "  collect) do_collect ;;\n"
        "  inventory) do_inventory ;;\n"
        "  checksums) do_checksums ;;\n"
        "esac\n"
    )
    return header + body


def program_digest() -> str:
    """The sha256 (hex) of the collector's text: what an installed copy must hash to."""
    return hashlib.sha256(program_text().encode()).hexdigest()
