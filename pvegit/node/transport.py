"""How pvegit talks to a node: over SSH, or locally.

Both transports run POSIX shell scripts and hand back their output; the
collection logic (collect.py) is the same for both. The SSH transport lives
in ssh.py so that commands which never connect do not import paramiko.

A node is not trusted, and neither is how much it prints: ``run`` reads a
command's stdout within the ``OutputLimit`` its caller chose and stops there
(``OutputTooLarge``), its stderr within ``MAX_STDERR``; a ``stream`` is read
within the limits of its parser (tarstream.py, inventorystream.py).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from pvegit.config.host import local_root
from pvegit.errors import CollectError, ConnectError, OutputTooLarge

if TYPE_CHECKING:
    from pvegit.config.home import Home
    from pvegit.config.host import Host

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_IO_TIMEOUT = 60.0
MiB = 1024 * 1024
MAX_STDERR = MiB  # what is kept of a command's stderr (the rest is read and dropped)
_CHUNK = 64 * 1024
# The first line of every script pvegit runs on a node: Proxmox VE's own PATH for
# root, set explicitly (not left to the sshd build), and messages in plain C.
NODE_ENVIRONMENT = (
    "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
)


@dataclass(frozen=True)
class OutputLimit:
    """The most stdout pvegit reads from one command, and what that output is for.

    Chosen where the command is run, from what an honest node answers there.
    """

    max_bytes: int
    what: str  # named in the error, e.g. "the PVE version (pveversion)"

    def exceeded(self, label: str = "") -> OutputTooLarge:
        """The error for a command that sent more than ``max_bytes`` (``label``: the host)."""
        unit, name = (MiB, "MiB") if self.max_bytes >= MiB else (1024, "KiB")
        size = f"{self.max_bytes / unit:.1f}".removesuffix(".0") + " " + name
        return OutputTooLarge(
            f"{label + ': ' if label else ''}the node sent more than {size} for {self.what}; "
            "pvegit stopped reading there. A broken or replaced program on the node prints "
            "without end: check that program on the node"
        )


class OutputBuffer:
    """A command's stdout, collected within its limit: never holds more than one byte past it."""

    def __init__(self, limit: OutputLimit, label: str = "") -> None:
        self._limit = limit
        self._label = label
        self._data = bytearray()

    def room(self) -> int:
        """How much to read next: a chunk, and never past the limit's first extra byte."""
        return min(MiB, self._limit.max_bytes + 1 - len(self._data))

    def add(self, chunk: bytes) -> None:
        """Keep ``chunk``; raises OutputTooLarge once the output passes the limit."""
        self._data += chunk
        if len(self._data) > self._limit.max_bytes:
            raise self._limit.exceeded(self._label)

    def value(self) -> bytes:
        return bytes(self._data)


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass
class StreamOutcome:
    """Filled in once a streamed command has ended."""

    exit_code: int = -1
    stderr: bytes = b""


class PendingCommand(Protocol):
    """A command started in the background on the node."""

    def output(self) -> IO[bytes]:
        """Its stdout as a stream, to read within limits (``cancel`` when done with it).

        Raises ConnectError or CollectError when reading fails.
        """
        ...

    def cancel(self) -> None:
        """Stop waiting for it (the node may still finish it)."""
        ...


class Transport(Protocol):
    """A connection to one node."""

    root: str  # "/" on a live node, or the mount point of a rescued disk
    live: bool  # True when the commands run on the node itself
    label: str  # the host's name, for messages
    user: str  # the login user
    # How the collector is reached (collector.py): None until asked on this connection.
    access: str | None
    # The sha256 of the node's allow-list (allowlist.py) as the installed collector
    # answered it ("none": no list); None inline, or until asked.
    allow_list: str | None

    def run(self, script: str, stdin: bytes = b"", *, limit: OutputLimit) -> CommandResult:
        """Run a shell script (``stdin`` fed to it); return its exit code and output.

        Its stdout is read within ``limit``: past it the command is abandoned and
        OutputTooLarge raised. Raises ConnectError or CollectError when reading fails.
        """
        ...

    def stream(
        self, script: str, stdin: bytes = b""
    ) -> AbstractContextManager[tuple[IO[bytes], StreamOutcome]]:
        """Run a shell script whose stdout is read as a stream (a context manager);
        ``stdin`` (small: a request's parameters) is fed to it first."""
        ...

    def spawn(self, script: str, stdin: bytes = b"") -> PendingCommand:
        """Start a shell script that runs while other commands do (``stdin`` as for stream)."""
        ...

    def close(self) -> None: ...


class LocalTransport:
    """Runs the collection on this machine: pvegit on the node, or a mounted disk."""

    label = "local"
    user = "root"

    def __init__(self, root: str = "/", io_timeout: float = DEFAULT_IO_TIMEOUT) -> None:
        self.root = root
        self.live = root == "/"
        self.access: str | None = "local"  # the collector runs inline, as this user
        self.allow_list: str | None = None  # inline: no list
        self._io_timeout = io_timeout
        if not Path(root).is_dir():
            raise ConnectError(f"local root {root} is not a directory: mount the node's disk first")

    def run(self, script: str, stdin: bytes = b"", *, limit: OutputLimit) -> CommandResult:
        process = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + self._io_timeout
            stdout, stderr = _communicate(process, stdin, OutputBuffer(limit), deadline)
            code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as err:
            raise CollectError(
                f"a local command took longer than {self._io_timeout:.0f} s"
            ) from err
        finally:
            if process.poll() is None:  # over its limit or its time: abandoned
                process.kill()
                process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
        return CommandResult(code, stdout, stderr)

    @contextmanager
    def stream(self, script: str, stdin: bytes = b"") -> Iterator[tuple[IO[bytes], StreamOutcome]]:
        outcome = StreamOutcome()
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                ["/bin/sh", "-c", script],
                stdout=subprocess.PIPE,
                stderr=errors,
                stdin=_stdin_file(stdin),
            )
            assert process.stdout is not None
            try:
                yield process.stdout, outcome
            finally:
                process.stdout.close()
                try:
                    outcome.exit_code = process.wait(timeout=self._io_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    outcome.exit_code = process.wait()
                errors.seek(0)
                outcome.stderr = errors.read(MAX_STDERR)

    def spawn(self, script: str, stdin: bytes = b"") -> PendingCommand:
        return _LocalPending(script, self._io_timeout, stdin)

    def close(self) -> None:
        """Nothing to close for a local transport."""


def _stdin_file(data: bytes) -> IO[bytes] | int:
    """A command's stdin: nothing, or ``data`` from an unlinked temporary file."""
    if not data:
        return subprocess.DEVNULL
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the child holds it; ours closes with gc)
    file.write(data)
    file.seek(0)
    return file


class _LocalPending:
    def __init__(self, script: str, timeout: float, stdin: bytes = b"") -> None:
        self._timeout = timeout
        # Closed by cancel().
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdout=self._stdout,
            stderr=self._stderr,
            stdin=_stdin_file(stdin),
        )

    def output(self) -> IO[bytes]:
        # The script ends before its output is read: the file it wrote is the stream.
        try:
            self._process.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired as err:
            self.cancel()
            raise CollectError(f"a local command took longer than {self._timeout:.0f} s") from err
        self._stdout.seek(0)
        return self._stdout

    def cancel(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._stdout.close()
        self._stderr.close()


def _communicate(
    process: subprocess.Popen[bytes], stdin: bytes, stdout: OutputBuffer, deadline: float
) -> tuple[bytes, bytes]:
    """Feed ``stdin`` and read stdout (into ``stdout``, within its limit) and stderr
    (the first MAX_STDERR kept) until both end.

    Raises OutputTooLarge, or subprocess.TimeoutExpired at ``deadline``.
    """
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    stderr = bytearray()
    pending = memoryview(stdin)
    with selectors.DefaultSelector() as selector:
        if pending:
            os.set_blocking(process.stdin.fileno(), False)  # a full pipe must not block us
            selector.register(process.stdin, selectors.EVENT_WRITE)
        else:
            process.stdin.close()
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, 0)
            for key, _ in selector.select(left):
                if key.fileobj is process.stdin:
                    try:
                        pending = pending[os.write(key.fd, pending[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the script ended without reading it all
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(process.stdin)
                        process.stdin.close()
                    continue
                wanted = stdout.room() if key.fileobj is process.stdout else _CHUNK
                chunk = os.read(key.fd, wanted)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is process.stdout:
                    stdout.add(chunk)
                else:
                    stderr += chunk[: MAX_STDERR - len(stderr)]
    return stdout.value(), bytes(stderr)


def open_transport(
    home: Home,
    host: Host,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    io_timeout: float = DEFAULT_IO_TIMEOUT,
) -> Transport:
    """Connect to ``host`` the way its address says (SSH, or local)."""
    root = local_root(host.address)
    if root is not None:
        return LocalTransport(root, io_timeout=io_timeout)
    from pvegit.node.ssh import SshTransport

    return SshTransport.connect(home, host, connect_timeout=connect_timeout, io_timeout=io_timeout)
