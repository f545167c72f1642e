"""API tokens and notification targets: the admin's settings pages (admin only)."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.config.file import EVENTS, WEBHOOK_FORMATS, check_target
from pvegit.config.roles import ADMIN, DESCRIPTIONS, ROLES, VIEWER, check_role
from pvegit.content.redact import redact_url
from pvegit.errors import ConfigError, NotFound
from pvegit.service.notify import all_targets, send_test, target_location
from web.api import hash_token, new_token
from web.context import context_of, render
from web.guard import action, page

_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _tokens(
    request: Request, created: tuple[str, str] | None, error: str | None, status: int = 200
) -> Response:
    values = {
        "nav": "settings",
        "tokens": context_of(request).store.tokens(),
        "created": created,
        "error": error,
        "roles": [(role, DESCRIPTIONS[role]) for role in ROLES],
    }
    return render(request, "tokens.html", values, status_code=status)


@page(role=ADMIN)
def token_page(request: Request, user: str) -> Response:
    return _tokens(request, None, None)


@action
async def token_create(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = str(form.get("name", "")).strip()
    role = str(form.get("role", VIEWER))
    token = new_token()
    problem = None
    try:
        if not _TOKEN_NAME.match(name):
            raise ConfigError(
                "name the token with letters, digits, '.', '_' or '-', e.g. prometheus"
            )
        check_role(role)
        await run_in_threadpool(store.add_token, name, hash_token(token), user, role)
    except ConfigError as err:
        problem = str(err)
    if problem:
        return await run_in_threadpool(_tokens, request, None, problem, 400)
    await run_in_threadpool(store.audit, user, "token created", None, token=name, role=role)
    return await run_in_threadpool(_tokens, request, (name, token), None)


@action
async def token_revoke(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = request.path_params["token"]
    try:
        await run_in_threadpool(store.revoke_token, name)
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    await run_in_threadpool(store.audit, user, "token revoked", None, token=name)
    return RedirectResponse("/tokens", status_code=303)


def _notifications(request: Request, **extra: object) -> Response:
    context = context_of(request)
    made = {target.name for target in context.store.notify_targets()}
    targets = all_targets(context.config, context.store)
    values: dict[str, object] = {
        "nav": "settings",
        "config": context.config,
        "targets": [(target, target_location(target)) for target in targets],
        "made": made,
        "events": EVENTS,
        "formats": WEBHOOK_FORMATS,
        "results": None,
        "error": None,
        "form": {},
    }
    status = int(extra.pop("status", 200))  # type: ignore[call-overload]
    values.update(extra)
    return render(request, "notifications.html", values, status_code=status)


@page(role=ADMIN)
def notifications_page(request: Request, user: str) -> Response:
    return _notifications(request)


@action
async def notifications_add(request: Request, user: str, form: FormData) -> Response:
    """A notification target made in the web UI, checked like a [[notify]] table."""
    context = context_of(request)
    kind = str(form.get("type", ""))
    fields = (
        ("url", "format", "token")
        if kind == "webhook"
        else ("host", "port", "security", "username", "password", "from", "to")
    )
    settings: dict[str, object] = {
        "name": str(form.get("name", "")).strip(),
        "type": kind,
        "events": [str(event) for event in form.getlist("events")],
    }
    for field in fields:
        value = str(form.get(field, "")).strip()
        if value:
            settings[field] = int(value) if field == "port" and value.isdigit() else value
    if kind == "email" and isinstance(settings.get("to"), str):
        settings["to"] = [address.strip() for address in str(settings["to"]).split(",")]
    try:
        if not _TOKEN_NAME.match(str(settings["name"])):
            raise ConfigError("name the target with letters, digits, '.', '_' or '-'")
        check_target(settings, "the new target")
        await run_in_threadpool(context.store.add_notify_target, str(settings["name"]), settings)
    except ConfigError as err:
        # The form comes back as typed, but never with a credential in it.
        shown = {key: value for key, value in settings.items() if key not in ("password", "token")}
        if isinstance(shown.get("url"), str):
            shown["url"] = redact_url(str(shown["url"]))
        return _notifications(request, error=str(err), form=shown, status=400)
    await run_in_threadpool(
        context.store.audit,
        user,
        "notification target added",
        None,
        target=settings["name"],
        kind=kind,
    )
    return RedirectResponse("/notifications", status_code=303)


@action
async def notifications_remove(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    name = request.path_params["target"]
    try:
        await run_in_threadpool(context.store.remove_notify_target, name)
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    await run_in_threadpool(
        context.store.audit, user, "notification target removed", None, target=name
    )
    return RedirectResponse("/notifications", status_code=303)


@action
async def notifications_test(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    targets = all_targets(context.config, context.store)
    results = await run_in_threadpool(send_test, targets)
    await run_in_threadpool(
        context.store.audit, user, "test notification", None, targets=len(results)
    )
    return _notifications(request, results=results)
