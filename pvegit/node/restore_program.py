"""The restore-only program pvegit puts on a node, and the stream of changes it reads.

``pvegit-restore`` (its text: programs/pvegit-restore, the one source of what
runs on the node) is the forced command of pvegit's restore key. Every restore
writes through it: over the restore key (the installed program answers the
request), or, over a root login (root's password, or a legacy unrestricted
key), the very same text sent inline. The program's header documents the
stream; ``encode_stream`` writes it and ``parse_replies`` reads the answer.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pvegit.node.transport import CommandResult, MiB, OutputLimit, Transport

PROGRAM_NAME = "pvegit-restore"
PROGRAM_PATH = "/usr/local/sbin/pvegit-restore"
PROTOCOL = 1
EXIT_BROKEN_STREAM = 2
EXIT_NO_PMXCFS = 3
EXIT_REFUSED = 65
# Where the program writes; the same rule as ``allowed`` in the program.
WRITABLE_ROOTS = ("etc/", "root/", "usr/local/", "var/spool/cron/")
# pvegit's own access on the node: never written by a restore.
ACCESS_PATHS = (
    "root/.ssh/authorized_keys",
    "root/.ssh/authorized_keys2",
    "etc/pve/priv/authorized_keys",
)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}\Z")
_VERSION_ANSWER = OutputLimit(4096, "the version of pvegit-restore")


@cache
def program_text() -> str:
    """The text of ``pvegit-restore`` as this pvegit ships it."""
    return (resources.files("pvegit.node") / "programs" / PROGRAM_NAME).read_text("utf-8")


def program_sha256() -> str:
    """The sha256 of the shipped program: what an installed copy must hash to."""
    return hashlib.sha256(program_text().encode("utf-8")).hexdigest()


def program_version() -> int:
    """The version on the program's second line (``# pvegit-restore N``)."""
    return int(program_text().splitlines()[1].split()[-1])


def is_access_path(path: str) -> bool:
    """True for pvegit's own access on the node (its programs, authorized_keys)."""
    return path in ACCESS_PATHS or path.startswith("usr/local/sbin/pvegit-")


def refusal(path: str) -> str | None:
    """Why the program refuses to write ``path`` (tree form), or None: it may."""
    if is_access_path(path):
        return "pvegit's own access on the node is not restored"
    if not path.startswith(WRITABLE_ROOTS) or path.startswith("-"):
        return "outside what pvegit-restore writes (/etc, /root, /usr/local, /var/spool/cron)"
    return None


@dataclass(frozen=True)
class Change:
    """One change of the stream: write a file, make a link, or delete a path."""

    number: int  # echoed in the program's answer
    kind: str  # write, link, delete
    path: str  # tree form, relative to the root
    data: bytes = b""  # a file's content, a link's target
    mode: int | None = None  # None: leave mode and owner (pmxcfs decides them)
    owner: str = "-"
    group: str = "-"


def encode_stream(changes: list[Change], *, pmxcfs: bool) -> bytes:
    """The stream the program reads on stdin (see its header); ``pmxcfs``: refuse every
    change unless pmxcfs serves /etc/pve."""
    import base64

    lines = [b"pvegit-restore-stream 1\n"]
    if pmxcfs:
        lines.append(b"pmxcfs\n")
    for change in changes:
        path = change.path.encode("utf-8", "surrogateescape")
        if change.kind == "write":
            payload = base64.b64encode(change.data)
            mode = "-" if change.mode is None else f"{change.mode & 0o7777:04o}"
            owner, group = (change.owner, change.group)
            if change.mode is None or not (_NAME.match(owner) and _NAME.match(group)):
                owner, group = "-", "-"  # the program's rule for names: else no chown
            head = f"write {change.number} {mode} {owner} {group} {len(payload)} {len(path)}\n"
            lines.append(head.encode() + path + b"\n" + payload + b"\n")
        elif change.kind == "link":
            head = f"link {change.number} {len(path)} {len(change.data)}\n"
            lines.append(head.encode() + path + b"\n" + change.data + b"\n")
        else:
            lines.append(f"delete {change.number} {len(path)}\n".encode() + path + b"\n")
    lines.append(b"end\n")
    return b"".join(lines)


def parse_replies(stdout: bytes) -> dict[int, bool]:
    """The program's answer: change number -> written."""
    outcome: dict[int, bool] = {}
    for line in stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == PROGRAM_NAME and parts[2].isdigit():
            outcome[int(parts[2])] = parts[1] == "ok"
    return outcome


def request(operation: str) -> str:
    """The request line the program accepts (what SSH_ORIGINAL_COMMAND holds)."""
    return f"pvegit {operation} {PROTOCOL}"


def inline_command(operation: str, root: str = "/") -> str:
    """The shipped program run in a root shell with ``operation``'s request, below ``root``."""
    return (
        f"SSH_ORIGINAL_COMMAND={shlex.quote(request(operation))} "
        f"PVEGIT_RESTORE_ROOT={shlex.quote(root)} "
        f"sh -c {shlex.quote(program_text())} {PROGRAM_NAME}"
    )


@dataclass(frozen=True)
class InstalledVersion:
    """What a node's program answered to ``pvegit version 1``."""

    version: int
    sha256: str  # "inline" when the program was sent inline
    uid: int  # who runs it: only root (0) can write a restore

    @property
    def current(self) -> bool:
        return self.version == program_version() and self.sha256 in ("inline", program_sha256())


class RestoreChannel:
    """The way a restore's writes reach the program: a login whose forced command it is
    (``inline`` False), or a root shell that runs the shipped text (``inline`` True)."""

    def __init__(self, transport: Transport, *, inline: bool, owned: bool, how: str) -> None:
        self.transport = transport
        self.inline = inline
        self.how = how  # for the audit log: "restore key", "root password", ...
        self._owned = owned  # closed with the channel

    def call(self, operation: str, stdin: bytes = b"", *, limit: OutputLimit) -> CommandResult:
        """Send ``operation``'s request (and ``stdin``) to the program."""
        if self.inline:
            script = inline_command(operation, self.transport.root)
        else:
            script = request(operation)
        return self.transport.run(script, stdin, limit=limit)

    def version(self) -> InstalledVersion | None:
        """The program's version, hash and uid, or None when no pvegit-restore answered
        (a collector or another forced command refused the request)."""
        result = self.call("version", limit=_VERSION_ANSWER)
        parts = result.stdout.decode("utf-8", "replace").split()
        if result.exit_code != 0 or len(parts) != 4 or parts[0] != PROGRAM_NAME:
            return None
        if not (parts[1].isdigit() and parts[3].isdigit()):
            return None
        return InstalledVersion(int(parts[1]), parts[2], int(parts[3]))

    def close(self) -> None:
        if self._owned:
            self.transport.close()


def reply_limit(changes: int) -> OutputLimit:
    """What the program may answer for ``changes`` changes: one short line each."""
    return OutputLimit(64 * changes + MiB, "the restore's report of its writes")
