"""Sessions, CSRF tokens, login throttling and what a failed login claimed.

Passwords and API tokens are hashed and checked in the engine
(``pvegit/state/credentials.py``).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pvegit.errors import ConfigError
from pvegit.state.store import validate_host_name, validate_user_name
from pvegit.textsafe import printable


def load_secret_key(path: Path) -> str:
    """The key signing session cookies, created once (0600) in the home directory."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def csrf_token(session: dict[str, object]) -> str:
    """The session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_valid(session: dict[str, object], submitted: str | None) -> bool:
    expected = session.get("csrf")
    return (
        isinstance(expected, str)
        and bool(submitted)
        and hmac.compare_digest(expected, str(submitted))
    )


# A claimed name longer than this is cut in the audit log (an Authorization header
# can carry kilobytes); what is kept still shows what was tried.
_CLAIMED_LENGTH = 64


def _claimed(text: str, validate: Callable[[str], str]) -> str:
    if not text:
        return "-"
    try:
        return validate(text)
    except ConfigError:
        quoted = json.dumps(text[:_CLAIMED_LENGTH], ensure_ascii=False)
        return printable(quoted) + ("..." if len(text) > _CLAIMED_LENGTH else "")


def claimed_user(name: str) -> str:
    """A user name that a request claimed (a failed login), fit for the audit log.

    A valid user name is kept as it is; anything else (a newline, markup, a
    very long name) is recorded quoted, with control characters escaped and
    cut at 64 characters, so what was tried stays visible and can neither pass
    for a real user nor start a line of its own. An empty name is ``-``.
    """
    return _claimed(name, validate_user_name)


def claimed_host(name: str) -> str:
    """A host name taken from a request's URL, fit for the audit log (as ``claimed_user``)."""
    return _claimed(name, validate_host_name)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Slows password guessing: after ``free`` failures per user or per client
    address, each further attempt waits twice as long as the last (up to
    ``ceiling`` seconds). A success clears the user's count."""

    free: int = 5
    base: float = 30.0
    ceiling: float = 900.0
    window: float = 3600.0
    _failures: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_seconds(self, *keys: str, now: float | None = None) -> float:
        """Seconds before another attempt is allowed for any of ``keys`` (0: now)."""
        now = time.time() if now is None else now
        longest = 0.0
        with self._lock:
            for key in keys:
                failures = self._failures.get(key)
                if failures is None or now - failures.last > self.window:
                    continue
                if failures.count >= self.free:
                    delay = min(self.ceiling, self.base * 2 ** (failures.count - self.free))
                    longest = max(longest, failures.last + delay - now)
        return max(0.0, longest)

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            for key in keys:
                failures = self._failures.setdefault(key, _Failures())
                if now - failures.last > self.window:
                    failures.count = 0
                failures.count += 1
                failures.last = now

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
