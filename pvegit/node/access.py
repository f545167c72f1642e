"""How pvegit's key reaches a node, in one word each, and what each means.

Found on every connection (collector.ensure_access), recorded on the host
(hosts.access) and shown by every face: ``host show``, ``host list --json``,
the host page, the dashboard and Test connection.
"""

from __future__ import annotations

LOCAL = "local"  # this machine's own files: the collector runs inline
UNRESTRICTED = "unrestricted"  # a key that opens a root shell (legacy): runs inline
RESTRICTED = "restricted"  # root's key forced to the installed collector
RESTRICTED_USER = "restricted-user"  # a backup user's key forced to the collector (+ sudo)
RESTRICTED_KINDS = (RESTRICTED, RESTRICTED_USER)
UNKNOWN = "unknown"  # no connection has told yet


def access_words(access: str, host: str) -> str:
    """One line saying what ``access`` lets pvegit's key do on ``host``, and what to do."""
    if access == RESTRICTED:
        return "restricted: pvegit's key can only run the read-only collector (pvegit-collect)"
    if access == RESTRICTED_USER:
        return (
            "restricted (backup user): pvegit's key can only run the read-only collector, "
            "as a user without a shell of its own"
        )
    if access == UNRESTRICTED:
        return (
            "UNRESTRICTED: pvegit's key opens a root shell on the node; make it read-only: "
            f"pvegit host harden {host}"
        )
    if access == LOCAL:
        return "local: pvegit reads this machine's files itself"
    return "not known yet: the next snapshot or connection test finds out"


def needs_hardening(access: str) -> bool:
    """True for a host whose key still opens a root shell (the dashboard flags it)."""
    return access == UNRESTRICTED
