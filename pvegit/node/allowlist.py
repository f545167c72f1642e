"""The node's allow-list: what pvegit's collect key may read on that node, decided there.

The collect key alone must not be enough to read what a host does not back up
(its secrets, when the ``secrets`` category is not chosen; config.db; any
other file below the collector's roots). So hardening writes the host's
selection to a root-owned file on the node, ``/etc/pvegit-collect.allow``,
and the installed collector reads only what it allows: every operand must lie
at or below one of its ``path`` lines (by its name and by where it really
is), its ``exclude`` lines are added to tar's, and only its ``command`` lines
run as inventory. Someone holding a copy of ``$PVEGIT_HOME`` can then read
nothing the repositories do not already hold. The file changes only over a
root login (``pvegit host harden`` with root's password), never over the
collect key. Inline runs (an unrestricted key, a local root) have no list:
that login can read anything anyway.

The collector answers the file's sha256 in its ``version`` answer, so pvegit
sees on every connection whether the node's list is this host's selection.
"""

from __future__ import annotations

import hashlib

from pvegit.config.host import Host
from pvegit.config.selection import Selection, resolve_selection
from pvegit.node.access import RESTRICTED_KINDS

ALLOW_PATH = "/etc/pvegit-collect.allow"
ALLOW_MAX_BYTES = 1024 * 1024
NO_LIST = "none"  # the version answer's third word when the node has no list

_HEADER = (
    "# pvegit-collect allow-list: what pvegit's collect key may read on this node.\n"
    "# Written by `pvegit host harden` from the host's selection; pvegit checks its sha256.\n"
)


def allow_list_text(selection: Selection) -> str:
    """The allow-list for ``selection``: the same text for the same selection."""
    lines = [f"path {path}\n" for path in selection.paths]
    lines += [f"exclude {pattern}\n" for pattern in selection.excludes]
    lines += [f"command {name}\n" for name in selection.commands]
    return _HEADER + "".join(lines)


def allow_list_digest(selection: Selection) -> str:
    """The sha256 (hex) the node's list has when it is ``selection``'s."""
    return hashlib.sha256(allow_list_text(selection).encode("utf-8")).hexdigest()


def list_advice(host_name: str) -> str:
    """What to run so the node's allow-list follows the host's selection."""
    return f"pvegit host harden {host_name} (with root's password: the list is root's)"


def digest_state(digest: str, selection: Selection) -> str:
    """A node's list, by the digest its collector answered, against ``selection``:
    ``current``, ``stale`` (another selection's) or ``missing``."""
    if digest == NO_LIST:
        return "missing"
    return "current" if digest == allow_list_digest(selection) else "stale"


def state_words(state: str | None, host_name: str) -> str | None:
    """One line for every face when the list is ``missing`` or ``stale``, with what to
    run; None otherwise."""
    if state == "missing":
        return (
            f"the node has no allow-list ({ALLOW_PATH}): its collector reads no files for "
            "pvegit; " + list_advice(host_name)
        )
    if state == "stale":
        return (
            f"the node's allow-list ({ALLOW_PATH}) is not this host's selection (it changed "
            "since the host was hardened): the node reads only what the list allows; "
            + list_advice(host_name)
        )
    return None


def list_state(host: Host) -> str | None:
    """The node's allow-list as ``host``'s last connection found it (``digest_state``);
    None when the key is not restricted (no list applies) or no connection has told yet."""
    if host.access_kind not in RESTRICTED_KINDS or not host.allow_list:
        return None
    return digest_state(
        host.allow_list, resolve_selection(host.categories, host.includes, host.excludes)
    )


def list_words(host: Host) -> str | None:
    """``state_words`` for ``host`` as its last connection found its node's list."""
    return state_words(list_state(host), host.name)


# The node's side, part of the collector's text (program.py). `load_allow` reads the
# list once per request (installed runs only): a regular root-owned file that only root
# may write, each line validated as a request's would be. `listed NAME LIST` is true when
# NAME is one of LIST's patterns or lies below one (globbing must be off: `set -f`).
LISTED = (
    'listed() {\n  for a in $2; do case "$1" in $a|$a/*) return 0 ;; esac; done\n  return 1\n}\n'
)
SHELL = (
    LISTED + "load_allow() {\n"
    "  a_paths= a_excludes= a_commands=\n"
    '  [ "$inline" = 1 ] && return 0\n'
    f'  [ -f {ALLOW_PATH} ] && [ ! -L {ALLOW_PATH} ] || refuse "no allow-list at '
    f'{ALLOW_PATH}: this node does not say what pvegit may read (harden the host)"\n'
    f'  s=$(stat -c "%u %a %s" {ALLOW_PATH})\n'
    '  case "${s% *}" in\n'
    '    "0 "*[2367]?|"0 "*[2367]) refuse "the allow-list is writable by others than root" ;;\n'
    '    "0 "*) ;;\n'
    '    *) refuse "the allow-list is not root\'s" ;;\n'
    "  esac\n"
    # Never cut: a cut exclude line would exclude less than it says.
    f'  [ "${{s##* }}" -le {ALLOW_MAX_BYTES} ] || refuse "the allow-list is over 1 MiB"\n'
    "  while IFS= read -r line; do\n"
    '    case "$line" in ""|"#"*) continue ;; esac\n'
    "    k=${line%% *}; v=${line#* }\n"
    '    case "$k" in\n'
    '      path) valid_path "$v" || refuse "allow-list: path not allowed: $v"\n'
    "            a_paths=$a_paths$v$nl ;;\n"
    '      exclude) valid_name "$v" || refuse "allow-list: exclude not allowed: $v"\n'
    "               a_excludes=$a_excludes$v$nl ;;\n"
    '      command) command_line "$v" || refuse "allow-list: no such command: $v"\n'
    "               a_commands=$a_commands$v$nl ;;\n"
    '      *) refuse "allow-list: unknown line: $k" ;;\n'
    "    esac\n"
    "  done <<PVEGIT_ALLOW\n"
    f"$(head -c {ALLOW_MAX_BYTES} {ALLOW_PATH})\n"
    "PVEGIT_ALLOW\n"
    "  export a_paths a_excludes\n"
    "}\n"
    "allows_command() {\n"
    '  [ "$inline" = 1 ] && return 0\n'
    '  for a in $a_commands; do [ "$a" = "$1" ] && return 0; done\n'
    "  return 1\n"
    "}\n"
    "allow_digest() {\n"
    f"  if [ -f {ALLOW_PATH} ]; then sha256sum <{ALLOW_PATH} | cut -c 1-64; "
    f"else echo {NO_LIST}; fi\n"
    "}\n"
)
