"""Secret lines in files a rebuild needs: masked wherever their content is shown.

Some files cannot be left out like a secret file (pvegit.config.categories'
SECRET_PATTERNS) because a rebuild needs them, yet carry a password on a line
of their own: iscsid.conf's CHAP passwords, frr.conf's ``password`` lines, a
Wi-Fi key in /etc/network/interfaces, a proxy's credentials in apt.conf.d.
They are collected and committed as they are; every face that shows content
(the web pages, the API, notifications, ``pvegit diff`` and ``show``) shows
them through ``mask_lines``, the way CI logs mask secrets: the line keeps its
key and loses its value (``password ********``), so a diff still says that the
password changed, never what it is. Showing the real line is the same audited
step as showing a secret file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pvegit.config.selection import matches_resolved

MASK = "********"


@dataclass(frozen=True)
class MaskRule:
    """Where a secret value sits on a line: the ``secret`` group of ``pattern``."""

    description: str
    pattern: re.Pattern[str]
    paths: tuple[str, ...] = ()  # tree paths (tar semantics); () = every text file


def _rule(description: str, pattern: str, *paths: str) -> MaskRule:
    return MaskRule(description, re.compile(pattern, re.IGNORECASE), paths)


# A key-value line whose value is the secret; comment marks are allowed so a
# commented-out old password is masked too.
_COMMENT = r"^[\s#!;]*"
_VALUE = r"(?P<secret>\S(?:.*\S)?)"

MASK_RULES: tuple[MaskRule, ...] = (
    # The password runs to the URL's last '@' (the URL ends at a space, a quote or <>):
    # written unencoded, a password may hold '@', '/' or ':' itself, so an earlier '@'
    # could be inside it; a later '@' in a path only masks more than needed.
    _rule(
        "a password in a URL (scheme://user:password@host), e.g. an APT proxy "
        '(Acquire::http::Proxy "http://user:password@proxy:3142") or a repository',
        r"\b[a-z][a-z0-9+.-]*://[^\s/:\"'<>]*:(?P<secret>[^\s\"'<>]+)@",
    ),
    _rule(
        "open-iscsi's CHAP passwords: node.session.auth.password(_in), "
        "discovery.sendtargets.auth.password(_in)",
        _COMMENT + r"[\w.]*\.password(?:_in)?\s*=\s*" + _VALUE,
        "etc/iscsi",
    ),
    _rule(
        "FRR: password, enable password, neighbor X password, isis/area/domain-password, "
        "ip ospf authentication-key and message-digest-key, key-string, rip authentication "
        "string, ospf6 authentication key",
        _COMMENT + r"(?:.*?\s)?(?:"
        r"(?:[\w-]*-)?password\s+(?:(?:clear|md5|\d)\s+)?"
        r"|authentication-key\s+"
        r"|message-digest-key\s+\d+\s+md5\s+"
        r"|key-string\s+"
        r"|authentication\s+string\s+"
        r"|authentication\s+keyid\s+\d+\s+method\s+\S+\s+key\s+"
        r")" + _VALUE,
        "etc/frr",
    ),
    _rule(
        "ifupdown's Wi-Fi keys: wpa-psk, wpa-password, wpa-passphrase, wpa-wep-key0..3, "
        "wireless-key",
        _COMMENT
        + r"(?:wpa-psk|wpa-password|wpa-passphrase|wpa-wep-key\d|wireless-key\d?)\s+"
        + _VALUE,
        "etc/network/interfaces",
        "etc/network/interfaces.d",
        "etc/network/interfaces.new",
    ),
    _rule(
        "WireGuard keys: PrivateKey=, PresharedKey=",
        _COMMENT + r"(?:PrivateKey|PresharedKey)\s*=\s*" + _VALUE,
        "etc/systemd/network/*.netdev",
        "etc/wireguard",
    ),
    _rule(
        "CIFS mount passwords in fstab: password=, pass=",
        r"(?:^|[\s,])(?:password|pass)=(?P<secret>[^,\s]+)",
        "etc/fstab",
    ),
    _rule(
        "Postfix: a static SASL password (smtp_sasl_password_maps = static:user:password)",
        _COMMENT + r"\w*sasl_password_maps\s*=\s*static:[^:\s]*:" + _VALUE,
        "etc/postfix/*.cf",
    ),
    _rule(
        "a guest's cloud-init password: cipassword:",
        _COMMENT + r"cipassword:\s*" + _VALUE,
        "etc/pve/nodes/*/qemu-server/*.conf",
    ),
    _rule(
        "pppd peers: password",
        _COMMENT + r"password\s+" + _VALUE,
        "etc/ppp/peers",
    ),
)

_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
PRIVATE_KEY_RULE = (
    "a PEM private key inside any file: everything between -----BEGIN … PRIVATE "
    "KEY----- and -----END … PRIVATE KEY-----, on lines of their own or on one line "
    "(a key in a shell variable or JSON string, its line breaks written as \\n)"
)


def rules_for(path: str) -> tuple[MaskRule, ...]:
    """The rules that apply to ``path`` (a tree path; built-in links resolved)."""
    return tuple(
        rule for rule in MASK_RULES if not rule.paths or matches_resolved(rule.paths, path)
    )


def _mask_line(line: str, rules: Sequence[MaskRule]) -> str:
    for rule in rules:
        spans = [
            match.span("secret")
            for match in rule.pattern.finditer(line)
            if match.group("secret") and match.group("secret") != MASK
        ]
        for start, end in reversed(spans):
            line = line[:start] + MASK + line[end:]
    return line


def _mask_keys(line: str, in_key: bool) -> tuple[str, bool]:
    """``line`` with the body of every PEM private key on it masked, and whether a key
    is still open at its end; ``in_key``: whether one was open at its start.

    The markers stay, so the line still says a key is there; a key's body may fill
    lines of its own, or share a line with its markers (``KEY="-----BEGIN PRIVATE
    KEY-----\\nMIIE…\\n-----END PRIVATE KEY-----"``). A BEGIN without its END masks
    to the end of the file: better too much than a key.
    """
    pieces: list[str] = []
    position = 0
    while True:
        if not in_key:
            begin = _PRIVATE_KEY_BEGIN.search(line, position)
            if begin is None:
                pieces.append(line[position:])
                return "".join(pieces), False
            pieces.append(line[position : begin.end()])
            position, in_key = begin.end(), True
            continue
        end = _PRIVATE_KEY_END.search(line, position)
        body = line[position : end.start() if end else len(line)]
        pieces.append(MASK if body.strip() and body != MASK else body)
        if end is None:
            return "".join(pieces), True
        pieces.append(end.group())
        position, in_key = end.end(), False


def mask_lines(path: str, lines: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """``lines`` of the file at ``path`` as they may be shown, and how many were masked.

    Takes the lines without their line ends; returns as many lines, each one
    either unchanged or with its secret values replaced by ``MASK``.
    """
    rules = rules_for(path)
    shown: list[str] = []
    masked = 0
    in_key = False
    for line in lines:
        hidden, in_key = _mask_keys(line, in_key)
        hidden = _mask_line(hidden, rules)
        masked += hidden != line
        shown.append(hidden)
    return tuple(shown), masked
