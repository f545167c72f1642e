"""Notification targets: the admin's settings page (admin only).

Listing, adding, removing and testing are ``pvegit/service/notify_targets.py``
(checked and audited there); this page turns the form into a ``[[notify]]``
table and shows the list, the test's outcomes, or why a target was refused.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.config.file import EVENTS, WEBHOOK_FORMATS
from pvegit.config.roles import ADMIN
from pvegit.content.redact import redact_url
from pvegit.errors import ConfigError
from pvegit.service.notify_targets import (
    add_target,
    list_targets,
    remove_target,
    send_test_notification,
)
from web.context import change_then_redirect, context_of, render
from web.guard import action, page

_WEBHOOK_FIELDS = ("url", "format", "token")
_EMAIL_FIELDS = ("host", "port", "security", "username", "password", "from", "to")


def _notifications(request: Request, status: int = 200, **extra: object) -> Response:
    context = context_of(request)
    values: dict[str, object] = {
        "nav": "settings",
        "config": context.config,
        "targets": list_targets(context.config, context.store),
        "events": EVENTS,
        "formats": WEBHOOK_FORMATS,
        "results": None,
        "error": None,
        "form": {},
        **extra,
    }
    return render(request, "notifications.html", values, status_code=status)


def _settings(form: FormData) -> dict[str, Any]:
    """The form as a ``[[notify]]`` table: only the type's fields, empty ones left out."""
    kind = str(form.get("type", ""))
    settings: dict[str, Any] = {
        "name": str(form.get("name", "")).strip(),
        "type": kind,
        "events": [str(event) for event in form.getlist("events")],
    }
    for field in _WEBHOOK_FIELDS if kind == "webhook" else _EMAIL_FIELDS:
        value = str(form.get(field, "")).strip()
        if value:
            settings[field] = int(value) if field == "port" and value.isdigit() else value
    if kind == "email" and isinstance(settings.get("to"), str):
        settings["to"] = [address.strip() for address in str(settings["to"]).split(",")]
    return settings


def _shown(settings: dict[str, Any]) -> dict[str, Any]:
    """The form to show again as typed, but never with a credential in it."""
    shown = {key: value for key, value in settings.items() if key not in ("password", "token")}
    if isinstance(shown.get("url"), str):
        shown["url"] = redact_url(str(shown["url"]))
    return shown


@page(role=ADMIN)
def notifications_page(request: Request, user: str) -> Response:
    return _notifications(request)


@action
async def notifications_add(request: Request, user: str, form: FormData) -> Response:
    """A notification target made in the web UI, checked like a [[notify]] table."""
    store = context_of(request).store
    settings = _settings(form)
    try:
        await run_in_threadpool(lambda: add_target(store, settings, actor=user))
    except ConfigError as err:
        problem = str(err)
        return await run_in_threadpool(
            lambda: _notifications(request, 400, error=problem, form=_shown(settings))
        )
    return RedirectResponse("/notifications", status_code=303)


@action
async def notifications_remove(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = str(request.path_params["target"])
    return await change_then_redirect(
        lambda: remove_target(store, name, actor=user), "/notifications"
    )


@action
async def notifications_test(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    try:
        results = await run_in_threadpool(
            lambda: send_test_notification(context.config, context.store, actor=user)
        )
    except ConfigError as err:
        problem = str(err)
        return await run_in_threadpool(lambda: _notifications(request, 400, error=problem))
    return await run_in_threadpool(lambda: _notifications(request, results=results))
