"""SSH transport over paramiko: one connection per run, pinned host keys.

paramiko, socket and SSH errors are translated here into pvegit's errors.
Host keys are never accepted silently: an unknown key raises HostKeyError
with its fingerprint (``pvegit host trust`` pins it), a changed key is
refused until the user trusts the new one.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

# paramiko imports `invoke` only to run `Match exec` lines of ssh_config files,
# which pvegit never reads; the import costs ~70 ms on every CLI start. A None
# entry makes paramiko's guarded `import invoke` fail fast and skip it.
sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]

import paramiko  # noqa: E402

from pvegit.errors import AuthError, CollectError, ConnectError, HostKeyError  # noqa: E402
from pvegit.node.transport import (  # noqa: E402
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IO_TIMEOUT,
    MAX_STDERR,
    CommandResult,
    MiB,
    OutputBuffer,
    OutputLimit,
    StreamOutcome,
)

if TYPE_CHECKING:
    from pvegit.config.home import Home
    from pvegit.config.host import Host

KEEPALIVE_SECONDS = 15
# After a stream's parser is done only tar's padding is left (under 10 KiB).
_STREAM_END = OutputLimit(MiB, "what followed the end of its stream")


def fingerprint(key_blob_base64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a base64 key blob."""
    digest = hashlib.sha256(base64.b64decode(key_blob_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _QuickAckSocket:
    """A TCP socket that acknowledges at once and sends small packets at once.

    SSH is a conversation of small request/reply packets. With Nagle's
    algorithm on one side and delayed ACKs on the other, each round trip can
    stall ~40 ms; on a loopback sshd that made login and each command cost 50 ms
    instead of 5. TCP_NODELAY covers our side's sending; TCP_QUICKACK (Linux,
    reset by the kernel after use, so set before every read) makes our ACKs
    release the server's held packets.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._quickack = getattr(socket, "TCP_QUICKACK", None)

    def recv(self, size: int) -> bytes:
        if self._quickack is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, self._quickack, 1)
        return self._sock.recv(size)

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


def _open_socket(address: str, port: int, timeout: float) -> _QuickAckSocket:
    try:
        return _QuickAckSocket(socket.create_connection((address, port), timeout=timeout))
    except TimeoutError as err:
        raise ConnectError(
            f"{address}:{port} did not answer within {timeout:.0f} s: is the node up "
            "and the address right?"
        ) from err
    except ConnectionRefusedError as err:
        raise ConnectError(
            f"{address}:{port} refused the connection: is sshd running on the node?"
        ) from err
    except socket.gaierror as err:
        raise ConnectError(f"cannot resolve {address!r}: {err.strerror}") from err
    except OSError as err:
        raise ConnectError(f"cannot reach {address}:{port}: {err.strerror or err}") from err


def _start_transport(
    address: str, port: int, timeout: float, key_type: str | None
) -> paramiko.Transport:
    sock = _open_socket(address, port, timeout)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    transport.auth_timeout = timeout
    if key_type:
        # Ask for the pinned key type only, so a server offering several keys
        # cannot look "changed" by negotiating another type.
        transport.get_security_options().key_types = [key_type]
    try:
        transport.start_client(timeout=timeout)
    except (paramiko.SSHException, EOFError, OSError) as err:
        transport.close()
        if key_type and "host key" in str(err).lower():
            raise HostKeyError(
                f"{address}:{port} no longer offers a {key_type} host key; if the node "
                "was reinstalled, check its new key and run 'pvegit host trust'",
                fingerprint="",
                key_type=key_type,
                changed=True,
            ) from err
        raise ConnectError(f"SSH handshake with {address}:{port} failed: {err}") from err
    return transport


def scan_host_key(
    address: str, port: int, timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> tuple[str, str]:
    """Return (key type, base64 blob) of the node's preferred host key, without logging in."""
    transport = _start_transport(address, port, timeout, None)
    try:
        key = transport.get_remote_server_key()
        return key.get_name(), key.get_base64()
    finally:
        transport.close()


def _load_private_key(path: Path) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(str(path))
    except FileNotFoundError as err:
        raise AuthError(f"private key {path} is missing: run 'pvegit init'") from err
    except (paramiko.SSHException, ValueError, OSError) as err:
        raise AuthError(f"cannot load private key {path}: {err}") from err


class SshTransport:
    """A logged-in SSH connection to a node."""

    root = "/"
    live = True

    def __init__(
        self, transport: paramiko.Transport, host_label: str, io_timeout: float, user: str = "root"
    ) -> None:
        self._transport = transport
        self._label = host_label
        self._io_timeout = io_timeout
        self.label = host_label
        self.user = user
        self.access: str | None = None  # asked by collector.ensure_access
        self.allow_list: str | None = None  # the node's allow-list digest, asked with it

    @classmethod
    def connect(
        cls,
        home: Home,
        host: Host,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        io_timeout: float = DEFAULT_IO_TIMEOUT,
        password: str | None = None,
        key: paramiko.PKey | None = None,
    ) -> SshTransport:
        """Connect, check the pinned host key, and log in with pvegit's key (or a password,
        or ``key``: the restore key, decrypted).

        Raises ConnectError, HostKeyError or AuthError.
        """
        transport = _start_transport(host.address, host.port, connect_timeout, host.host_key_type)
        try:
            cls._check_host_key(transport, host)
            transport.set_keepalive(KEEPALIVE_SECONDS)
            try:
                if password is not None:
                    transport.auth_password(host.user, password)
                elif key is not None:
                    transport.auth_publickey(host.user, key)
                else:
                    key_path = Path(host.identity) if host.identity else home.private_key_path
                    transport.auth_publickey(host.user, _load_private_key(key_path))
            except paramiko.AuthenticationException as err:
                how = "password" if password is not None else "pvegit's key"
                raise AuthError(
                    f"{host.name}: the node refused {how} for user {host.user!r}. Install the "
                    "key with 'pvegit host add --install-key' (or add the line printed by "
                    "'pvegit key' to that user's ~/.ssh/authorized_keys). Note: root's "
                    "authorized_keys on a PVE node links into /etc/pve/priv, so key logins as "
                    "root also fail while pmxcfs is down (systemctl status pve-cluster)"
                ) from err
            except (paramiko.SSHException, EOFError, OSError) as err:
                raise ConnectError(f"{host.name}: login failed: {err}") from err
        except BaseException:
            transport.close()
            raise
        return cls(transport, host.name, io_timeout, host.user)

    @staticmethod
    def _check_host_key(transport: paramiko.Transport, host: Host) -> None:
        key = transport.get_remote_server_key()
        offered = fingerprint(key.get_base64())
        if host.host_key is None:
            raise HostKeyError(
                f"{host.name}: host key not trusted yet. The node offers {key.get_name()} "
                f"{offered}. Compare it with the node's console (ssh-keygen -lf "
                f"/etc/ssh/ssh_host_ed25519_key.pub), then run: pvegit host trust {host.name} "
                f"--fingerprint {offered}",
                fingerprint=offered,
                key_type=key.get_name(),
                changed=False,
            )
        if key.get_name() != host.host_key_type or key.get_base64() != host.host_key:
            raise HostKeyError(
                f"{host.name}: HOST KEY CHANGED. Pinned {host.host_key_type} "
                f"{fingerprint(host.host_key)}, the node now offers {key.get_name()} {offered}. "
                "Someone may be intercepting the connection, or the node was reinstalled. "
                "Refusing to connect. If the change is expected, check the new key on the "
                f"node's console and run: pvegit host trust {host.name} --fingerprint {offered}",
                fingerprint=offered,
                key_type=key.get_name(),
                changed=True,
            )

    def _open(self, script: str, stdin: bytes | None = None) -> paramiko.Channel:
        """A channel running ``script``; with ``stdin`` (even empty) sent and closed."""
        try:
            channel = self._transport.open_session(timeout=self._io_timeout)
            channel.settimeout(self._io_timeout)
            channel.exec_command(script)
            if stdin is not None:
                channel.sendall(stdin)
                channel.shutdown_write()
        except (paramiko.SSHException, EOFError, OSError) as err:
            raise ConnectError(f"{self._label}: the connection dropped: {err}") from err
        return channel

    def _exit_code(self, channel: paramiko.Channel, *, stream: bool = False) -> int:
        # recv_exit_status() has no timeout; wait on the event with one instead.
        if not channel.status_event.wait(self._io_timeout):
            raise ConnectError(f"{self._label}: the node stopped answering")
        if channel.exit_status == -1 and stream:
            # The connection died before the node said how its stream ended: what came
            # (often nothing at all, and an empty stream parses) is not the whole.
            raise ConnectError(
                f"{self._label}: the connection broke off before the node's stream ended; "
                "nothing from this run was committed"
            )
        if channel.exit_status == -1:  # closed without the node saying how the command ended
            raise ConnectError(f"{self._label}: the connection closed before the command ended")
        return int(channel.exit_status)

    def run(self, script: str, stdin: bytes = b"", *, limit: OutputLimit) -> CommandResult:
        # stdin is always closed: a collector request reads its parameters to the end.
        return _SshPending(self, self._open(script, stdin)).result(limit)

    def spawn(self, script: str, stdin: bytes = b"") -> _SshPending:
        return _SshPending(self, self._open(script, stdin))

    @contextmanager
    def stream(self, script: str, stdin: bytes = b"") -> Iterator[tuple[IO[bytes], StreamOutcome]]:
        channel = self._open(script, stdin)
        outcome = StreamOutcome()
        reader = _ChannelReader(channel, self._label, self._io_timeout, _STREAM_END)
        try:
            yield cast(IO[bytes], reader), outcome
            reader.read()  # whatever the parser left (tar's zero padding)
            outcome.exit_code = self._exit_code(channel, stream=True)
            outcome.stderr = reader.drain_stderr()
        finally:
            channel.close()

    def close(self) -> None:
        self._transport.close()


class _SshPending:
    """A command running on its own channel of the connection."""

    def __init__(self, transport: SshTransport, channel: paramiko.Channel) -> None:
        self._transport = transport
        self._channel = channel

    def result(self, limit: OutputLimit) -> CommandResult:
        """Wait for the command to end; its exit code and output (stdout within ``limit``).

        The channel is closed when it returns or raises: past ``limit`` that abandons
        the command (OutputTooLarge).
        """
        try:
            reader = _ChannelReader(
                self._channel, self._transport._label, self._transport._io_timeout, limit
            )
            stdout = reader.read()
            code = self._transport._exit_code(self._channel)
            return CommandResult(code, stdout, reader.drain_stderr())
        finally:
            self._channel.close()

    def output(self) -> IO[bytes]:
        # Read as it arrives: paramiko holds at most one window (2 MiB) unread.
        reader = _ChannelReader(
            self._channel, self._transport._label, self._transport._io_timeout, _STREAM_END
        )
        return cast(IO[bytes], reader)

    def cancel(self) -> None:
        self._channel.close()


class _ChannelReader:
    """A file-like view of a channel's stdout that also collects its stderr.

    Sized reads are the parser's to bound; ``read()`` without a size reads to the
    end within ``limit`` (OutputTooLarge past it).
    """

    def __init__(
        self, channel: paramiko.Channel, label: str, timeout: float, limit: OutputLimit
    ) -> None:
        self._channel = channel
        self._label = label
        self._timeout = timeout
        self._limit = limit
        self._stderr = bytearray()

    def drain_stderr(self) -> bytes:
        # Left unread past the cap, stderr fills the channel's window: the node then
        # waits, and a read times out; it never piles up here.
        while self._channel.recv_stderr_ready() and len(self._stderr) < MAX_STDERR:
            self._stderr += self._channel.recv_stderr(65536)
        return bytes(self._stderr)

    def _recv(self, size: int) -> bytes:
        self.drain_stderr()
        try:
            return bytes(self._channel.recv(size))
        except TimeoutError as err:
            raise ConnectError(
                f"{self._label}: the node stopped sending for {self._timeout:.0f} s"
            ) from err
        except (paramiko.SSHException, EOFError, OSError) as err:
            raise CollectError(f"{self._label}: the connection broke mid-stream: {err}") from err

    def read(self, size: int = -1) -> bytes:
        if size is not None and size >= 0:
            chunks = bytearray()
            while len(chunks) < size:
                chunk = self._recv(min(size - len(chunks), 1 << 20))
                if not chunk:
                    break
                chunks += chunk
            return bytes(chunks)
        everything = OutputBuffer(self._limit, self._label)
        while chunk := self._recv(everything.room()):
            everything.add(chunk)
        return everything.value()
