"""Sending one notification: a webhook POST (urllib) or an e-mail (smtplib).

Loaded by notify.send on the first delivery, so that the processes that
only queue events (a CLI snapshot with no targets, most runs) do not pay
for smtplib, ssl and urllib at start-up. Errors come back as PvegitError
with the target's credentials redacted.
"""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from typing import TYPE_CHECKING

from pvegit.content.redact import redact_text, redact_url
from pvegit.errors import PvegitError

if TYPE_CHECKING:
    from pvegit.config.file import Target
    from pvegit.service.notify import Event

SEND_TIMEOUT = 10.0


def deliver(target: Target, event: Event) -> None:
    """Deliver one event to one target now; raise PvegitError saying why it failed."""
    try:
        if target.kind == "webhook":
            _send_webhook(target, event)
        else:
            _send_email(target, event)
    except (OSError, smtplib.SMTPException, ValueError) as err:
        # Not chained: urllib's and http.client's messages quote the URL as given.
        message = redact_text(f"notification target {target.name!r}: {err}", target.url)
        raise PvegitError(message) from None


def _send_webhook(target: Target, event: Event) -> None:
    headers = {"User-Agent": "pvegit"}
    if target.format == "slack":
        body = json.dumps({"text": f"*{event.title}*\n{event.message}"}).encode()
        headers["Content-Type"] = "application/json"
    elif target.format == "ntfy":
        body = event.message.encode()
        headers.update(
            {
                "Title": event.title,
                "Tags": event.kind,
                "Priority": "high" if event.kind in ("failed", "stale") else "default",
            }
        )
    elif target.format == "gotify":
        body = json.dumps(
            {
                "title": event.title,
                "message": event.message,
                "priority": event.to_json()["priority"],
            }
        ).encode()
        headers["Content-Type"] = "application/json"
        if target.token:
            headers["X-Gotify-Key"] = target.token
    else:
        body = json.dumps(event.to_json()).encode()
        headers["Content-Type"] = "application/json"
    url, user_info = _split_user_info(target.url)
    if target.token and target.format != "gotify":
        headers["Authorization"] = f"Bearer {target.token}"
    elif user_info:  # urllib would take user:password@ for part of the host name
        headers["Authorization"] = "Basic " + base64.b64encode(user_info.encode()).decode()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:
            response.read(1024)
    except urllib.error.HTTPError as err:
        raise OSError(f"{redact_url(target.url)} answered HTTP {err.code}") from None


def _split_user_info(url: str) -> tuple[str, str]:
    """The URL without its ``user:password@``, and that user-info (percent-decoded)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, ""
    user_info, host = parts.netloc.rsplit("@", 1)
    return (
        urllib.parse.urlunsplit(parts._replace(netloc=host)),
        urllib.parse.unquote(user_info),
    )


def _send_email(target: Target, event: Event) -> None:
    message = EmailMessage()
    message["Subject"] = f"[pvegit] {event.title}"
    message["From"] = target.sender
    message["To"] = ", ".join(target.recipients)
    message.set_content(event.message + "\n")
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if target.security == "tls":
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=SEND_TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=SEND_TIMEOUT)
    with smtp:
        if target.security == "starttls":
            smtp.starttls(context=context)
        if target.username:
            smtp.login(target.username, target.password)
        smtp.send_message(message)
