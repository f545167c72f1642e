"""API tokens: the admin's settings page (admin only).

Each change is one call of ``pvegit/actions/tokens.py`` (checked and audited
there); a new token's secret is shown on the page once.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from pvegit.actions.tokens import CreatedToken, create_token, list_tokens, revoke_token
from pvegit.config.roles import ADMIN, DESCRIPTIONS, ROLES, VIEWER
from pvegit.errors import ConfigError
from web.context import change_then_redirect, context_of, render
from web.guard import action, page


def _tokens(
    request: Request, created: CreatedToken | None, error: str | None, status: int = 200
) -> Response:
    values = {
        "nav": "settings",
        "tokens": list_tokens(context_of(request).store),
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
    try:
        created = await run_in_threadpool(lambda: create_token(store, name, role, actor=user))
    except ConfigError as err:
        return await run_in_threadpool(_tokens, request, None, str(err), 400)
    return await run_in_threadpool(_tokens, request, created, None)


@action
async def token_revoke(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = str(request.path_params["token"])
    return await change_then_redirect(lambda: revoke_token(store, name, actor=user), "/tokens")
