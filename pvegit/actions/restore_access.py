"""The second credential: what lets a restore write to a node.

pvegit's own key reads (on a hardened node it is forced to the collector). A
restore writes through ``pvegit-restore`` (node/restore_program.py) with one of:

* the restore key, ``$PVEGIT_HOME/ssh/restore_ed25519``: made on request
  (``create_restore_key``), kept encrypted (OpenSSH format, bcrypt KDF) with a
  passphrase that is asked for at restore time and never stored or logged; on
  the node its ``authorized_keys`` entry is ``restrict`` and forced to the
  program, so even decrypted it writes the files of a restore and nothing else;
* the node's root password, for one restore (a root login running the program
  inline), used once and forgotten;
* on a legacy host whose key is still an unrestricted root login, that key
  (the same program inline): nothing new is given away there.

A copy of ``$PVEGIT_HOME`` without the passphrase cannot write to a node.
"""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pvegit.config.home import Home
from pvegit.config.host import Host
from pvegit.errors import AuthError, ConfigError, OutputTooLarge, RefusedError
from pvegit.node.restore_program import (
    PROGRAM_NAME,
    PROGRAM_PATH,
    InstalledVersion,
    RestoreChannel,
    program_sha256,
    program_text,
)
from pvegit.node.transport import LocalTransport, OutputLimit, Transport

if TYPE_CHECKING:
    import paramiko

MIN_PASSPHRASE = 8
# The program's text, for whoever installs it (host harden): the one shipped copy.
restore_program_text = program_text
_INSTALL_ANSWER = OutputLimit(4096, "the path of authorized_keys (readlink)")


@dataclass(frozen=True)
class RestoreCredential:
    """What the person restoring gave: the restore key's passphrase or root's password.

    Never stored, never logged (kept out of its repr).
    """

    passphrase: str | None = field(default=None, repr=False)
    root_password: str | None = field(default=None, repr=False)


def has_restore_key(home: Home) -> bool:
    return home.restore_key_path.exists()


def create_restore_key(home: Home, passphrase: str) -> str:
    """Make the restore key pair, the private key encrypted with ``passphrase``; return the
    public key. Raises ConfigError when one exists or the passphrase is too short."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if has_restore_key(home):
        raise ConfigError(
            f"a restore key exists already ({home.restore_key_path}); to replace it, "
            "remove both of its files first (and its entries on the nodes)"
        )
    if len(passphrase) < MIN_PASSPHRASE:
        raise ConfigError(f"the passphrase needs at least {MIN_PASSPHRASE} characters")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    comment = f"{PROGRAM_NAME}@{socket.gethostname()}"
    home.restore_key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = home.restore_key_path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
        handle.flush()
        os.fsync(handle.fileno())
    home.restore_public_key_path.write_text(f"{public.decode()} {comment}\n")
    os.chmod(home.restore_public_key_path, 0o644)
    os.replace(temporary, home.restore_key_path)
    return restore_public_key(home) or ""


def restore_public_key(home: Home) -> str | None:
    """The restore key's public half as one line, or None when there is no restore key."""
    try:
        return home.restore_public_key_path.read_text().strip() or None
    except FileNotFoundError:
        return None


def restore_authorized_line(home: Home) -> str | None:
    """The ``authorized_keys`` entry of the restore key (restricted, forced to
    pvegit-restore), or None when there is no restore key."""
    public = restore_public_key(home)
    if public is None:
        return None
    return f'restrict,command="{PROGRAM_PATH}" {public}'


def load_restore_key(home: Home, passphrase: str) -> paramiko.PKey:
    """The restore key, decrypted with ``passphrase``. Raises AuthError for a wrong one,
    ConfigError when there is no restore key."""
    import io

    import paramiko

    try:
        text = home.restore_key_path.read_text()
    except FileNotFoundError as err:
        raise ConfigError(_no_key_yet()) from err
    try:
        return paramiko.Ed25519Key.from_private_key(io.StringIO(text), password=passphrase)
    except paramiko.SSHException as err:
        raise AuthError(
            "wrong passphrase for the restore key: nothing was written. (pvegit does not "
            "keep the passphrase; whoever created the key with 'pvegit restore-key create' "
            "chose it)"
        ) from err


def install_restore_access(transport: Transport, home: Home) -> str:
    """Install pvegit-restore and the restore key's restricted entry in root's
    authorized_keys, over a root login (root's password, or a still unrestricted key).

    Idempotent: the program is replaced by the shipped one, an older entry of the same
    key replaced by the current one. Returns the real path of the authorized_keys file
    (on a cluster node the cluster-wide /etc/pve/priv/authorized_keys). Raises ConfigError
    without a restore key, AuthError when the login is not root or the write fails.
    """
    line = restore_authorized_line(home)
    if line is None:
        raise ConfigError(_no_key_yet())
    blob = line.split()[2]
    directory = os.path.dirname(PROGRAM_PATH)
    script = (
        '[ "$(id -u | head -c 32)" = 0 ] || { echo "not root" >&2; exit 4; }\n'
        f"umask 022; mkdir -p {directory} || exit 3\n"
        f"t=$(mktemp {directory}/.{PROGRAM_NAME}.XXXXXX) || exit 3\n"
        f'cat > "$t" && chmod 755 "$t" && chown 0:0 "$t" && mv -f "$t" {PROGRAM_PATH} '
        '|| { rm -f "$t"; exit 3; }\n'
        f'[ "$(sha256sum < {PROGRAM_PATH} | head -c 128)" = "{program_sha256()}  -" ] || exit 3\n'
        'umask 077; mkdir -p /root/.ssh; f=/root/.ssh/authorized_keys; touch "$f" || exit 3\n'
        'real=$(readlink -f "$f" | head -c 4096); [ -n "$real" ] || exit 3\n'
        f"line={shlex.quote(line)}; blob={shlex.quote(blob)}\n"
        'if ! grep -qxF "$line" "$real"; then\n'
        '  if grep -qF "$blob" "$real"; then\n'
        '    n=$(mktemp "$real.XXXXXX") && grep -vF "$blob" "$real" > "$n" && '
        'mv -f "$n" "$real" || exit 3\n'
        "  fi\n"
        '  printf "%s\\n" "$line" >> "$real" || exit 3\n'
        "fi\n"
        'printf "%s\\n" "$real"\n'
    )
    result = transport.run(script, program_text().encode("utf-8"), limit=_INSTALL_ANSWER)
    if result.exit_code != 0:
        problem = result.stderr.decode("utf-8", "replace").strip() or f"exit {result.exit_code}"
        raise AuthError(
            f"could not install {PROGRAM_PATH} and the restore key's entry on the node "
            f"(it needs a root login): {problem}"
        )
    return result.stdout.decode("utf-8", "replace").strip()


def credential_needed(home: Home, host: Host) -> str:
    """What a restore onto ``host`` needs when pvegit's key cannot write there."""
    message = (
        f"{host.name}: pvegit's key on this node only reads (it is restricted, or not "
        "root's), so a restore needs a second "
        "credential: the restore key's passphrase (the CLI asks for it, or "
        "--passphrase-stdin; the web UI: the passphrase field of the confirmation), or "
        "the node's root password for this one restore (--root-password). Nothing was written"
    )
    if not has_restore_key(home):
        message += ". " + _no_key_yet(host.name)
    return message


def open_restore_channel(
    home: Home,
    host: Host,
    transport: Transport,
    credential: RestoreCredential | None,
    ask: Callable[[str], RestoreCredential | None] | None = None,
) -> RestoreChannel:
    """The channel a restore's writes go through (close it after).

    ``transport`` is the restore's reading connection. Without ``credential`` it is
    used if it is a root shell (a local host, a legacy unrestricted root key; a backup
    user's shell is not); otherwise
    ``ask`` is asked (with the reason) and, without an answer, RefusedError names what
    is needed. Raises AuthError for a wrong passphrase or password or a key the node
    does not accept, RefusedError for an outdated pvegit-restore on the node.
    """
    if isinstance(transport, LocalTransport):
        return RestoreChannel(transport, inline=True, owned=False, how="local")
    if credential is None:
        shell = RestoreChannel(transport, inline=True, owned=False, how="pvegit's key (root)")
        answer = _version(shell)
        if answer is not None and answer.uid == 0:  # a root shell: a legacy host
            return shell
        reason = credential_needed(home, host)
        credential = ask(reason) if ask is not None else None
        if credential is None:
            raise RefusedError(reason)
    from pvegit.node.ssh import SshTransport

    as_root = replace(host, user="root", identity=None)
    if credential.root_password is not None:
        try:
            login = SshTransport.connect(home, as_root, password=credential.root_password)
        except AuthError as err:
            raise AuthError(
                f"{host.name}: the node refused root's password (wrong, or sshd does not "
                "allow root password logins); nothing was written"
            ) from err
        return RestoreChannel(login, inline=True, owned=True, how="root password")
    if credential.passphrase is None:
        raise RefusedError(credential_needed(home, host))
    key = load_restore_key(home, credential.passphrase)
    try:
        login = SshTransport.connect(home, as_root, key=key)
    except AuthError as err:
        raise AuthError(
            f"{host.name}: the node does not accept the restore key for root; install it "
            f"with 'pvegit restore-key install {host.name}' (asks root's password once). "
            "Nothing was written"
        ) from err
    channel = RestoreChannel(login, inline=False, owned=True, how="restore key")
    try:
        version = _version(channel)
    except BaseException:
        channel.close()
        raise
    if version is None or not version.current or version.uid != 0:
        channel.close()
        found = (
            "no pvegit-restore answered"
            if version is None
            else (f"version {version.version}, sha256 {version.sha256[:12]}…")
        )
        raise RefusedError(
            f"{host.name}: {PROGRAM_PATH} on the node is not the one this pvegit ships "
            f"({found}); update it with 'pvegit restore-key install {host.name}'. "
            "Nothing was written"
        )
    return channel


def _version(channel: RestoreChannel) -> InstalledVersion | None:
    """The program's answer to ``version``; a flood of it refuses the restore."""
    try:
        return channel.version()
    except OutputTooLarge as err:
        raise RefusedError(f"{err}. Nothing was written") from err


def _no_key_yet(name: str = "NAME") -> str:
    return (
        "No restore key exists yet: create one with 'pvegit restore-key create' (it asks "
        f"for its passphrase), then put it on the node with 'pvegit restore-key install {name}'"
    )
