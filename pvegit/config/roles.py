"""Who may do what in the web UI, the API and over git: the three roles.

Each web user and each API token has one role; each role can do what the
ones below it can. The CLI is root on the pvegit machine and is not limited
by them.
"""

from __future__ import annotations

from pvegit.errors import ConfigError

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES: tuple[str, ...] = (VIEWER, OPERATOR, ADMIN)

DESCRIPTIONS: dict[str, str] = {
    VIEWER: "history, diffs and runs; no secrets, no changes",
    OPERATOR: "also back up now, verify, restore preview, test connection",
    ADMIN: "everything: hosts, restore, secrets, users, tokens, notifications, git clone",
}


def check_role(name: str) -> str:
    """``name`` if it is a role; ConfigError saying which roles there are otherwise."""
    if name not in ROLES:
        raise ConfigError(f"unknown role {name!r}; choose from: {', '.join(ROLES)}")
    return name


def allows(role: str | None, needed: str) -> bool:
    """True when ``role`` may do what needs ``needed`` (an unknown role may do nothing)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(check_role(needed))
