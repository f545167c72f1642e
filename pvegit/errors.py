"""The one error tree of pvegit.

Every error a user can meet is a ``PvegitError`` whose message says what went
wrong and what to do. Library errors (paramiko, socket, dulwich, sqlite3) are
translated where they enter, never leaked as tracebacks.
"""

from __future__ import annotations


class PvegitError(Exception):
    """Base of all expected failures; the message is shown to the user as is."""


class ConfigError(PvegitError):
    """Bad user input: a host setting, a path, a schedule, a revision."""


class NotFound(PvegitError):
    """A host, run, revision or path that does not exist."""


class ConnectError(PvegitError):
    """The node could not be reached or did not answer in time (transient)."""


class AuthError(PvegitError):
    """The node refused pvegit's key or password (permanent until fixed)."""


class HostKeyError(PvegitError):
    """The node's host key is unknown or differs from the pinned one."""

    def __init__(self, message: str, *, fingerprint: str, key_type: str, changed: bool) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        self.key_type = key_type
        self.changed = changed


class HostKeyMismatch(HostKeyError):
    """The node offers another key than the fingerprint a person confirmed: nothing pinned."""

    def __init__(
        self, message: str, *, fingerprint: str, key_type: str, changed: bool, expected: str
    ) -> None:
        super().__init__(message, fingerprint=fingerprint, key_type=key_type, changed=changed)
        self.expected = expected


class CollectError(PvegitError):
    """The node sent something unusable: a broken or hostile stream, a failed command."""


class OutputTooLarge(CollectError):
    """A node sent more on a command's stdout than that command's limit; pvegit stopped
    reading (and abandoned the command) at the limit."""


class RefusedError(PvegitError):
    """A snapshot that must not be committed (pmxcfs down, mass deletion)."""


class LockTimeout(PvegitError):
    """Another run of the same host held the lock for too long."""


class StorageError(PvegitError):
    """The disk holding $PVEGIT_HOME is full, or too full to start a run."""


class RepositoryDamaged(PvegitError):
    """A host's repository is damaged (a ref, a pack, its index, its config).

    Nothing reads it as "no history" and nothing writes to it until
    ``pvegit repair NAME`` has put it back; the message names the damage.
    """

    def __init__(self, host_name: str, problems: list[str]) -> None:
        self.host_name = host_name
        self.problems = tuple(problems)
        shown = "; ".join(problems[:3])
        if len(problems) > 3:
            shown += f" (and {len(problems) - 3} more)"
        super().__init__(
            f"the repository of {host_name} is damaged: {shown}. Nothing was read or "
            f"written; run `pvegit repair {host_name}` to put it back on its newest "
            "complete snapshot"
        )


class StateDamaged(PvegitError):
    """state.db is missing, empty or unreadable while the repositories hold history."""
