"""Web users: added with a role, their password or role changed, logged out, removed.

One function per change, for the CLI (``pvegit user ...``) and the web UI's
users page alike: the checks, the change in state.db and its audit entry
together. ``actor`` is who acts, for the audit log. The store keeps the last
admin (ConfigError), and a new password, a lower role, a removal or "log out
everywhere" ends the user's sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvegit.config.roles import ADMIN, check_role
from pvegit.state.credentials import hash_password, validate_new_password
from pvegit.state.store import Store, validate_user_name


@dataclass(frozen=True)
class NewUser:
    """A user just added, with the role it was given."""

    name: str
    role: str


@dataclass(frozen=True)
class RoleChange:
    """A user's role before and after a change."""

    name: str
    role: str
    previous: str


def add_user(
    store: Store, name: str, password: str, role: str | None = None, *, actor: str
) -> NewUser:
    """Add the user ``name`` with ``password`` and ``role``.

    Without a role the first user is an admin, later ones viewers. Raises
    ConfigError for a name, role or password not allowed, a name taken, or a
    first user who would not be an admin.
    """
    validate_user_name(name)
    if role is not None:
        check_role(role)
    chosen = store.add_user(name, hash_password(validate_new_password(password)), role)
    store.audit(actor, "user added", None, user=name, role=chosen)
    return NewUser(name, chosen)


def set_password(store: Store, name: str, password: str, *, actor: str) -> None:
    """Give ``name`` a new password; its sessions end. ConfigError for a password not
    allowed, NotFound if there is no such user."""
    store.set_password(name, hash_password(validate_new_password(password)))
    store.audit(actor, "password changed", None, user=name)


def set_role(store: Store, name: str, role: str, *, actor: str) -> RoleChange:
    """Give ``name`` another role; a lower one ends its sessions.

    ConfigError for an unknown role or the last admin demoted, NotFound if there
    is no such user.
    """
    previous = store.set_role(name, check_role(role))
    store.audit(actor, "user role changed", None, user=name, role=role, previous=previous)
    return RoleChange(name, role, previous)


def end_sessions(store: Store, name: str, *, actor: str) -> None:
    """Log ``name`` out everywhere: every session cookie it has stops working.
    NotFound if there is no such user."""
    store.end_sessions(name)
    store.audit(actor, "logged out everywhere", None, user=name)


def remove_user(store: Store, name: str, *, actor: str) -> None:
    """Remove ``name`` (its sessions end with it). ConfigError for the last admin,
    NotFound if there is no such user."""
    store.remove_user(name)
    store.audit(actor, "user removed", None, user=name)


def make_demo_admin(store: Store, password: str, *, actor: str) -> None:
    """Make ``admin`` an admin with ``password`` (``pvegit demo``'s one-time password),
    adding the user if there is none; its earlier sessions end."""
    admin = store.user("admin")
    if admin is None:
        store.add_user("admin", hash_password(password), ADMIN)
    else:
        store.set_password("admin", hash_password(password))
        if admin.role != ADMIN:
            store.set_role("admin", ADMIN)
    store.audit(actor, "demo admin password set", None, user="admin")
