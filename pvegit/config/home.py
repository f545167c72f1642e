"""``$PVEGIT_HOME``: the one directory that holds everything pvegit keeps.

Layout::

    state.db            SQLite (WAL): hosts, runs, audit events
    repos/<host>.git    one bare git repository per host, branch main
    ssh/id_ed25519      pvegit's own key pair (private key 0600)
    ssh/restore_ed25519 the restore key pair, made by `pvegit restore-key create`; the
                        private key encrypted with a passphrase nobody stores
    known_hosts         pinned host keys, OpenSSH format (rewritten from state.db by
                        pvegit/actions/trust.py whenever a pinned key changes)
    locks/<host>.lock   flock files serializing runs of one host across processes
    locks/restore/<host>.lock   held by a restore onto the node while it runs
    locks/.known_hosts.lock     one writer of known_hosts at a time
    PVEGIT_HOME.TAG     marks the directory as a pvegit home: never collected from any host
    demo-node/<name>    the simulated nodes of `pvegit demo` (the one part a host may collect)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pvegit.errors import ConfigError

KEY_COMMENT = "pvegit"

# The file that marks a directory as a pvegit home. The collection skips every
# directory holding it, wherever it is found (through symlinks, bind mounts, a
# local root of "/", an SSH "node" that is this machine): the home holds
# pvegit's private key, the session-signing secret and the password hashes.
HOME_TAG = "PVEGIT_HOME.TAG"
# Below the home, the simulated nodes of `pvegit demo`: the only part of a home
# that a host may collect (they are what the demo backs up).
DEMO_NODES = "demo-node"
_TAG_TEXT = (
    "This directory is a pvegit home (its state, private key and repositories).\n"
    "pvegit never collects a directory holding this file from any host.\n"
)


def default_home() -> Path:
    """Return ``$PVEGIT_HOME``, else /var/lib/pvegit for root, else the XDG data dir."""
    explicit = os.environ.get("PVEGIT_HOME")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/pvegit")
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "pvegit"


@dataclass(frozen=True)
class Home:
    """Paths inside one pvegit home directory."""

    root: Path

    @property
    def state_path(self) -> Path:
        return self.root / "state.db"

    @property
    def repos_dir(self) -> Path:
        return self.root / "repos"

    @property
    def private_key_path(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def public_key_path(self) -> Path:
        return self.root / "ssh" / "id_ed25519.pub"

    @property
    def restore_key_path(self) -> Path:
        """The restore key (encrypted; see actions/restore_access.py)."""
        return self.root / "ssh" / "restore_ed25519"

    @property
    def restore_public_key_path(self) -> Path:
        return self.root / "ssh" / "restore_ed25519.pub"

    @property
    def known_hosts_path(self) -> Path:
        return self.root / "known_hosts"

    @property
    def known_hosts_lock_path(self) -> Path:
        """Held while known_hosts is rewritten; no host name starts with a dot, so no
        host's run lock is this file."""
        return self.root / "locks" / ".known_hosts.lock"

    @property
    def demo_nodes_dir(self) -> Path:
        return self.root / DEMO_NODES

    def repo_path(self, host_name: str) -> Path:
        return self.repos_dir / f"{host_name}.git"

    def lock_path(self, host_name: str) -> Path:
        return self.root / "locks" / f"{host_name}.lock"

    def restore_lock_path(self, host_name: str) -> Path:
        """Held by a restore onto the node from its start to its audit entry's end."""
        return self.root / "locks" / "restore" / f"{host_name}.lock"

    def is_initialized(self) -> bool:
        return self.state_path.exists() and self.private_key_path.exists()

    def initialize(self) -> bool:
        """Create the directories and the key pair; return True if anything was created.

        Idempotent: an existing key is never replaced.
        """
        created = False
        old_umask = os.umask(0o077)
        try:
            for directory in (self.root, self.repos_dir, self.root / "ssh", self.root / "locks"):
                if not directory.is_dir():
                    try:
                        directory.mkdir(parents=True, mode=0o700)
                    except OSError as err:
                        raise ConfigError(
                            f"cannot create {directory}: {err.strerror}; "
                            "choose another place with --home or PVEGIT_HOME"
                        ) from err
                    created = True
            os.chmod(self.root, 0o700)
            tag = self.root / HOME_TAG
            if not tag.exists():  # homes made before the tag existed get it on first use
                tag.write_text(_TAG_TEXT)
            if not self.private_key_path.exists():
                _write_key_pair(self.private_key_path, self.public_key_path)
                created = True
        finally:
            os.umask(old_umask)
        return created

    def public_key(self) -> str:
        """Return pvegit's public key as one authorized_keys line."""
        try:
            return self.public_key_path.read_text().strip()
        except FileNotFoundError as err:
            raise ConfigError(f"no key pair in {self.root}: run 'pvegit init' first") from err


def _write_key_pair(private_path: Path, public_path: Path) -> None:
    # paramiko cannot generate ed25519 keys; cryptography can, in OpenSSH format.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public_bytes = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    temporary = private_path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_bytes)
    public_path.write_bytes(public_bytes + b" " + KEY_COMMENT.encode() + b"\n")
    os.chmod(public_path, 0o644)
    os.replace(temporary, private_path)
