"""Credentials in URLs, kept out of everything pvegit shows or writes down.

Mirror remotes and webhook URLs may carry user-info
(``https://user:token@host/...``) or tokens in the query (``?token=...``).
Wherever such a URL, or an error message a library made from it, reaches a log
line, a notification, a page, the terminal or the audit log, it goes through
here first.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

HIDDEN = "***"
# Shorter than this, a string cannot be a credential worth hiding, and hiding it
# everywhere it occurs would garble the message around it.
_SHORTEST_SECRET = 4
# user-info of any URL inside a text: scheme://anything-but-slash-or-space@
_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")
# the value of every query parameter of a URL inside a text
_QUERY_VALUE = re.compile(r"(?P<key>[?&][^\s=&#]+=)[^\s&#'\"]+")


def redact_url(url: str) -> str:
    """``url`` with its user-info and every query value replaced by ``***``.

    ``https://user:tk@ntfy.example.org/x?auth=tk`` becomes
    ``https://***@ntfy.example.org/x?auth=***``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # not even a URL: hide whatever looks like credentials
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = HIDDEN + "@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        (item.split("=", 1)[0] + "=" + HIDDEN) if "=" in item else item
        for item in parts.query.split("&")
        if item
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, HIDDEN if parts.fragment else ""))


def url_secrets(url: str) -> list[str]:
    """The credential strings a URL carries: user, password, query values (raw and decoded)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        user_info = parts.netloc.rsplit("@", 1)[0]
        found.append(user_info)
        found.extend(user_info.split(":", 1))
    for item in parts.query.split("&"):
        if "=" in item:
            found.append(item.split("=", 1)[1])
    found += [unquote(secret) for secret in found]
    return sorted(
        {secret for secret in found if len(secret) >= _SHORTEST_SECRET}, key=len, reverse=True
    )


def redact_text(text: str, *urls: str) -> str:
    """``text`` with the credentials of ``urls`` and of any URL inside it hidden.

    For error messages that libraries (dulwich, urllib, http.client) build from
    a URL, quoted, decoded or cut up: each URL's own user, password and query
    values are replaced wherever they occur, then any user-info and query value
    left in a URL-looking part of the text.
    """
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
            for secret in url_secrets(url):
                text = text.replace(secret, HIDDEN)
    text = _USER_INFO.sub(lambda match: match.group("scheme") + HIDDEN + "@", text)
    return _QUERY_VALUE.sub(lambda match: match.group("key") + HIDDEN, text)
