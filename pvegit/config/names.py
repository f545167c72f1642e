"""The names a person gives to web users, API tokens and notification targets.

They appear in URLs (``/users/NAME/role``), in the audit log (``token:NAME``)
and on the command line, so they stay plain: letters, digits, ``.``, ``_`` and
``-``, at most 64, starting with a letter or digit. (Host names have their own,
DNS-like rule in ``config/host.py``.)
"""

from __future__ import annotations

import re

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def is_plain_name(name: str) -> bool:
    """Whether ``name`` may name a user, a token or a notification target."""
    return _PLAIN_NAME.match(name) is not None
