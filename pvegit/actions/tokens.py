"""API tokens: created (the secret shown once), revoked, listed.

For the CLI (``pvegit token ...``) and the web UI's tokens page alike: the
checks, the change in state.db and its audit entry together. Only the token's
hash is stored (``state/credentials.py``); ``actor`` is who acts, recorded as
the token's creator and in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvegit.config.names import is_plain_name
from pvegit.config.roles import check_role
from pvegit.errors import ConfigError
from pvegit.state.credentials import hash_token, new_token
from pvegit.state.store import Store, TokenRecord


@dataclass(frozen=True)
class CreatedToken:
    """A token just created: ``secret`` exists nowhere else, show it once."""

    name: str
    role: str
    secret: str


def validate_token_name(name: str) -> str:
    """Return ``name`` if it may name a token (``config/names.py``), else raise ConfigError."""
    if not is_plain_name(name):
        raise ConfigError("name the token with letters, digits, '.', '_' or '-', e.g. prometheus")
    return name


def create_token(store: Store, name: str, role: str, *, actor: str) -> CreatedToken:
    """Create the API token ``name`` with ``role``.

    Raises ConfigError for a name or role not allowed, or a name taken (also by a
    revoked token, which stays listed).
    """
    validate_token_name(name)
    check_role(role)
    secret = new_token()
    store.add_token(name, hash_token(secret), actor, role)
    store.audit(actor, "token created", None, token=name, role=role)
    return CreatedToken(name, role, secret)


def revoke_token(store: Store, name: str, *, actor: str) -> None:
    """Revoke the active token ``name`` (it stays listed); NotFound if there is none."""
    store.revoke_token(name)
    store.audit(actor, "token revoked", None, token=name)


def list_tokens(store: Store) -> list[TokenRecord]:
    """Every token, active or revoked, by name (never a secret or a hash)."""
    return store.tokens()
