"""What the ``users`` and ``tokens`` tables store instead of a secret: its hash.

A password is hashed with scrypt (slow on purpose: a stolen state.db must not
give the passwords away quickly); an API token is a long random string, so a
plain SHA-256 of it is enough. The secrets themselves are never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from pvegit.errors import ConfigError

# scrypt with N=2^15, r=8, p=1: ~0.1 s and 32 MiB per attempt on this class of machine.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "pvegit_"


def hash_password(password: str) -> str:
    """A self-describing scrypt hash: ``scrypt$N$r$p$salt$hash`` (base64)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=_MAXMEM, dklen=32, **_SCRYPT)
    encode = base64.b64encode
    return (
        f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}$"
        f"{encode(salt).decode()}${encode(digest).decode()}"
    )


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the ``stored`` hash (None: no such user).

    Constant-time; a missing user costs the same time as a wrong password, and a
    hash that is not scrypt's (or is damaged) matches nothing.
    """
    if stored is None:
        hash_password(password)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def validate_new_password(password: str) -> str:
    """Return ``password`` if it may become a user's password, else raise ConfigError."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def new_token() -> str:
    """A new API token: ``pvegit_`` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the ``tokens`` table stores of ``token`` and looks it up by (hex SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()
