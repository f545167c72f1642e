"""Asking a node's collector (program.py) for something: one place builds every request.

How a request reaches the collector depends on the host's access, found on
each connection (``ensure_access``): a restricted key sends ``pvegit <request>
1`` (sshd runs the forced command, which reads ``SSH_ORIGINAL_COMMAND``) with
the parameters on stdin; an unrestricted key or a local root runs the very
same program inline, its parameters in a here-document. Either way the node
runs one implementation, and only the parameter lines differ from the wire.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Iterable, Sequence

from pvegit.config.limits import InventoryLimits
from pvegit.config.selection import Selection
from pvegit.errors import CollectError
from pvegit.node.access import RESTRICTED, RESTRICTED_KINDS, RESTRICTED_USER, UNRESTRICTED
from pvegit.node.allowlist import digest_state, state_words
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.node.program import (
    INLINE_NAME,
    INSTALLED_PATH,
    PROTOCOL,
    REFUSED,
    VERSION,
    program_digest,
    program_text,
)
from pvegit.node.transport import OutputLimit, Transport

_VERSION_ANSWER = OutputLimit(4096, "the collector's version")


def update_advice(host_name: str) -> str:
    """What to run to install or update the collector on ``host_name``."""
    return f"pvegit host harden {host_name} (it asks for root's password once)"


def ensure_access(transport: Transport) -> str:
    """The access kind of ``transport`` (asked once per connection, then remembered).

    A restricted key answers ``pvegit version 1`` through the installed
    collector, whose version and sha256 must be the ones pvegit ships; a shell
    (an unrestricted key) does not know the command. Raises CollectError when
    the installed collector is missing or not the one pvegit ships.
    """
    if transport.access is not None:
        return transport.access
    label = transport.label
    result = transport.run(f"pvegit version {PROTOCOL}", limit=_VERSION_ANSWER)
    answer = result.stdout.decode("utf-8", "replace").strip().split(" ")
    stderr = result.stderr.decode("utf-8", "replace")
    if result.exit_code == 0 and len(answer) in (3, 4) and answer[0] == "pvegit-collect":
        if answer[1] != str(VERSION) or answer[2] != program_digest() or len(answer) != 4:
            raise CollectError(
                f"{label}: the collector on the node ({INSTALLED_PATH}, version {answer[1]}, "
                f"sha256 {answer[2][:12]}) is not the one this pvegit ships (version {VERSION}, "
                f"sha256 {program_digest()[:12]}): nothing was read. Update it: "
                + update_advice(label)
            )
        transport.access = RESTRICTED if transport.user == "root" else RESTRICTED_USER
        transport.allow_list = answer[3]
    elif "pvegit-collect" in stderr and result.exit_code in (126, 127):
        raise CollectError(
            f"{label}: pvegit's key on the node may only run {INSTALLED_PATH}, which is not "
            "installed there (or not executable). Install it: " + update_advice(label)
        )
    elif result.exit_code == REFUSED:
        raise CollectError(
            f"{label}: the collector on the node does not know this pvegit's requests "
            "(another version). Update it: " + update_advice(label)
        )
    else:
        transport.access = UNRESTRICTED
    return transport.access


def allow_list_problem(transport: Transport, selection: Selection) -> str | None:
    """What is wrong with the node's allow-list for ``selection``; None when it is the
    selection's, or when the collector runs inline (no list: the login reads anything)."""
    if ensure_access(transport) not in RESTRICTED_KINDS:
        return None
    words = state_words(digest_state(transport.allow_list or "", selection), transport.label)
    return None if words is None else f"{transport.label}: {words}"


def request(transport: Transport, name: str, parameters: Iterable[tuple[str, str]] = ()) -> str:
    """The command that asks for ``name`` with ``parameters``, parameters included.

    For a restricted key the parameters go on stdin (``request_input``); inline
    they follow in a here-document. Raises CollectError for a parameter that
    would break its line (pvegit's own values never do).
    """
    lines = "".join(_line(key, value) for key, value in parameters)
    if ensure_access(transport) in RESTRICTED_KINDS:
        return f"pvegit {name} {PROTOCOL}"
    end = "PVEGIT_REQUEST_" + secrets.token_hex(8)
    return inline_request(name) + f" <<'{end}'\n{lines}{end}\n"


def request_input(transport: Transport, parameters: Iterable[tuple[str, str]] = ()) -> bytes:
    """What goes on stdin with ``request``: the parameters for a restricted key, else none."""
    if ensure_access(transport) not in RESTRICTED_KINDS:
        return b""
    text = "".join(_line(key, value) for key, value in parameters)
    return text.encode("utf-8", "surrogateescape")


def inline_request(name: str) -> str:
    """The collector run inline for ``name`` (stdin left to the caller)."""
    return f"sh -c {shlex.quote(program_text())} {INLINE_NAME} {name} {PROTOCOL}"


def checksums_request(transport: Transport, names: bytes) -> tuple[str, bytes]:
    """The ``checksums`` request (command, stdin) for NUL-terminated ``names``: the
    collector answers ``sha256sum -z`` records for the ones it may read."""
    head = _line("root", transport.root).encode("utf-8", "surrogateescape")
    if ensure_access(transport) in RESTRICTED_KINDS:
        return f"pvegit checksums {PROTOCOL}", head + names
    return inline_request("checksums"), head + names


def _line(key: str, value: str) -> str:
    if "\n" in value or "\0" in value:
        raise CollectError(f"pvegit does not send a {key} holding a newline: {value!r}")
    return f"{key} {value}\n"


def needs_pve(selection: Selection) -> bool:
    """True when ``selection`` reads /etc/pve (or something below it)."""
    return any(is_pmxcfs_path(path) for path in selection.paths)


def operands(paths: Sequence[str]) -> list[str]:
    """Drop paths that another (literal) path already covers, so tar reads them once."""
    literal = [path for path in paths if not any(char in path for char in "*?[")]
    kept = []
    for path in paths:
        covered = any(path != other and path.startswith(other + "/") for other in literal)
        if not covered:
            kept.append(path)
    return kept


def collect_parameters(root: str, selection: Selection, *, live: bool) -> list[tuple[str, str]]:
    """The ``collect`` request's parameters: where, the paths (globs expand on the node),
    the excludes (tar's patterns), and whether config.db is backed up consistently."""
    parameters = [("root", root), ("live", "1" if live else "0")]
    parameters += [("path", path) for path in operands(selection.paths)]
    parameters += [("exclude", pattern) for pattern in selection.excludes]
    return parameters


def inventory_parameters(
    boundary: str, names: Sequence[str], limits: InventoryLimits
) -> list[tuple[str, str]]:
    """The ``inventory`` request's parameters: the frame boundary, the per-command limit
    (the node keeps one byte past it) and the commands by name."""
    parameters = [("boundary", boundary), ("keep", str(limits.command_bytes))]
    return parameters + [("command", name) for name in names]


def tar_script(root: str, selection: Selection, *, live: bool) -> str:
    """The collector run inline for one tar stream of ``selection`` below ``root``.

    The probe goes to stderr; when /etc/pve is wanted but pmxcfs is not serving
    it, the program stops (exit 97) before reading anything.
    """
    end = "PVEGIT_REQUEST_" + secrets.token_hex(8)
    lines = "".join(_line(k, v) for k, v in collect_parameters(root, selection, live=live))
    return inline_request("collect") + f" <<'{end}'\n{lines}{end}\n"
