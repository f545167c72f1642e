"""API tokens and notification targets: the admin's settings pages."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.errors import ConfigError, NotFound
from pvegit.notify import send_test
from web.api import hash_token, new_token
from web.context import context_of, render
from web.guard import action, page

_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@page
def token_page(request: Request, user: str) -> Response:
    tokens = context_of(request).store.tokens()
    return render(
        request,
        "tokens.html",
        {"nav": "settings", "tokens": tokens, "created": None, "error": None},
    )


@action
async def token_create(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = str(form.get("name", "")).strip()
    token = new_token()
    problem = None
    if not _TOKEN_NAME.match(name):
        problem = "name the token with letters, digits, '.', '_' or '-', e.g. prometheus"
    else:
        try:
            await run_in_threadpool(store.add_token, name, hash_token(token), user)
        except ConfigError as err:
            problem = str(err)
    if problem:
        return render(
            request,
            "tokens.html",
            {"nav": "settings", "tokens": store.tokens(), "created": None, "error": problem},
            status_code=400,
        )
    await run_in_threadpool(store.audit, user, "token created", None, token=name)
    return render(
        request,
        "tokens.html",
        {"nav": "settings", "tokens": store.tokens(), "created": (name, token), "error": None},
    )


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


@page
def notifications_page(request: Request, user: str) -> Response:
    context = context_of(request)
    return render(
        request,
        "notifications.html",
        {
            "nav": "settings",
            "config": context.config,
            "results": None,
        },
    )


@action
async def notifications_test(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    results = await run_in_threadpool(send_test, context.config)
    await run_in_threadpool(
        context.store.audit, user, "test notification", None, targets=len(results)
    )
    return render(
        request,
        "notifications.html",
        {
            "nav": "settings",
            "config": context.config,
            "results": results,
        },
    )
