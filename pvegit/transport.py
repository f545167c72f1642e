"""How pvegit talks to a node: over SSH, or locally.

Both transports run POSIX shell scripts and hand back their output; the
collection logic (collect.py) is the same for both. The SSH transport lives
in sshclient.py so that commands which never connect do not import paramiko.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from pvegit.errors import CollectError, ConfigError, ConnectError

if TYPE_CHECKING:
    from pvegit.home import Home
    from pvegit.store import Host

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_IO_TIMEOUT = 60.0
# The first line of every script pvegit runs on a node: Proxmox VE's own PATH for
# root, set explicitly (not left to the sshd build), and messages in plain C.
NODE_ENVIRONMENT = (
    "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
)


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

    def result(self) -> CommandResult:
        """Wait for the command to end; return its exit code and output."""
        ...

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

    def run(self, script: str, stdin: bytes = b"") -> CommandResult:
        """Run a shell script (``stdin`` fed to it); return its exit code and output."""
        ...

    def stream(self, script: str) -> AbstractContextManager[tuple[IO[bytes], StreamOutcome]]:
        """Run a shell script whose stdout is read as a stream (a context manager)."""
        ...

    def spawn(self, script: str) -> PendingCommand:
        """Start a shell script that runs while other commands do."""
        ...

    def close(self) -> None: ...


class LocalTransport:
    """Runs the collection on this machine: pvegit on the node, or a mounted disk."""

    def __init__(self, root: str = "/", io_timeout: float = DEFAULT_IO_TIMEOUT) -> None:
        self.root = root
        self.live = root == "/"
        self._io_timeout = io_timeout
        if not Path(root).is_dir():
            raise ConnectError(f"local root {root} is not a directory: mount the node's disk first")

    def run(self, script: str, stdin: bytes = b"") -> CommandResult:
        try:
            completed = subprocess.run(
                ["/bin/sh", "-c", script],
                capture_output=True,
                timeout=self._io_timeout,
                check=False,
                input=stdin,
            )
        except subprocess.TimeoutExpired as err:
            raise CollectError(
                f"a local command took longer than {self._io_timeout:.0f} s"
            ) from err
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)

    @contextmanager
    def stream(self, script: str) -> Iterator[tuple[IO[bytes], StreamOutcome]]:
        outcome = StreamOutcome()
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                ["/bin/sh", "-c", script],
                stdout=subprocess.PIPE,
                stderr=errors,
                stdin=subprocess.DEVNULL,
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
                outcome.stderr = errors.read(1024 * 1024)

    def spawn(self, script: str) -> PendingCommand:
        return _LocalPending(script, self._io_timeout)

    def close(self) -> None:
        """Nothing to close for a local transport."""


class _LocalPending:
    def __init__(self, script: str, timeout: float) -> None:
        self._timeout = timeout
        # Closed by result() or cancel().
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdout=self._stdout,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
        )

    def result(self) -> CommandResult:
        try:
            code = self._process.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired as err:
            self.cancel()
            raise CollectError(f"a local command took longer than {self._timeout:.0f} s") from err
        outputs = []
        for handle in (self._stdout, self._stderr):
            handle.seek(0)
            outputs.append(handle.read())
            handle.close()
        return CommandResult(code, outputs[0], outputs[1])

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


def local_root(address: str) -> str | None:
    """The root directory of a ``local`` / ``local:/path`` address, else None."""
    if address == "local":
        return "/"
    if address.startswith("local:"):
        root = address[len("local:") :]
        if not root.startswith("/"):
            raise ConfigError(f"{address!r}: give an absolute path, e.g. local:/mnt/rescue")
        return root
    return None


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
    from pvegit.sshclient import SshTransport

    return SshTransport.connect(home, host, connect_timeout=connect_timeout, io_timeout=io_timeout)
