"""Web users for admins: list, add with a role, change a role, log out everywhere, remove.

Each change is one call of ``pvegit/actions/users.py`` (checked and audited
there); this page parses the form and shows the list again, or why a change
was refused.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from pvegit.actions.users import add_user, end_sessions, remove_user, set_role
from pvegit.config.roles import ADMIN, DESCRIPTIONS, ROLES, VIEWER
from pvegit.errors import ConfigError
from pvegit.state.store import Store
from web.context import change_then_redirect, context_of, render
from web.guard import action, page


def _users(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    return render(
        request,
        "users.html",
        {
            "nav": "settings",
            "users": context_of(request).store.users(),
            "roles": [(role, DESCRIPTIONS[role]) for role in ROLES],
            "error": error,
        },
        status_code=status,
    )


async def _change(request: Request, change: Callable[[Store], object]) -> Response:
    """Make ``change`` and go back to the list; the list again with the reason (400) for
    a change refused, the 404 page for a user that does not exist."""
    store = context_of(request).store
    try:
        return await change_then_redirect(lambda: change(store), "/users")
    except ConfigError as err:
        problem = str(err)
        return await run_in_threadpool(lambda: _users(request, error=problem, status=400))


def _named(request: Request) -> str:
    return str(request.path_params["user"])


@page(role=ADMIN)
def user_page(request: Request, user: str) -> Response:
    return _users(request)


@action
async def user_create(request: Request, user: str, form: FormData) -> Response:
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    role = str(form.get("role", VIEWER))
    return await _change(request, lambda store: add_user(store, name, password, role, actor=user))


@action
async def user_role(request: Request, user: str, form: FormData) -> Response:
    name, role = _named(request), str(form.get("role", ""))
    return await _change(request, lambda store: set_role(store, name, role, actor=user))


@action
async def user_logout(request: Request, user: str, form: FormData) -> Response:
    """End every session of another user (or one's own)."""
    name = _named(request)
    return await _change(request, lambda store: end_sessions(store, name, actor=user))


@action
async def user_remove(request: Request, user: str, form: FormData) -> Response:
    name = _named(request)
    return await _change(request, lambda store: remove_user(store, name, actor=user))
