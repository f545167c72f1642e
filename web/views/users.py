"""Web users for admins: list, add with a role, change a role, log out everywhere, remove.

Every change is audited. The store keeps the last admin (it can be neither
demoted nor removed), and a lower role, a removal or "log out everywhere"
ends the user's sessions at once.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.config.roles import ADMIN, DESCRIPTIONS, ROLES, VIEWER, check_role
from pvegit.errors import ConfigError, NotFound
from pvegit.state.store import validate_user_name
from web.context import context_of, render
from web.guard import action, page
from web.security import check_new_password, hash_password


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


async def _refused(request: Request, error: ConfigError) -> Response:
    """The users page again, saying why the change was not made."""
    return await run_in_threadpool(lambda: _users(request, error=str(error), status=400))


@page(role=ADMIN)
def user_page(request: Request, user: str) -> Response:
    return _users(request)


@action
async def user_create(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    role = str(form.get("role", VIEWER))
    try:
        validate_user_name(name)
        check_role(role)
        problem = check_new_password(password)
        if problem:
            raise ConfigError(problem)
        password_hash = await run_in_threadpool(hash_password, password)
        await run_in_threadpool(store.add_user, name, password_hash, role)
    except ConfigError as err:
        return await _refused(request, err)
    await run_in_threadpool(store.audit, user, "user added", None, user=name, role=role)
    return RedirectResponse("/users", status_code=303)


def _named(request: Request) -> str:
    return str(request.path_params["user"])


@action
async def user_role(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = _named(request)
    role = str(form.get("role", ""))
    try:
        previous = await run_in_threadpool(store.set_role, name, check_role(role))
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    except ConfigError as err:
        return await _refused(request, err)
    await run_in_threadpool(
        store.audit, user, "user role changed", None, user=name, role=role, previous=previous
    )
    return RedirectResponse("/users", status_code=303)


@action
async def user_logout(request: Request, user: str, form: FormData) -> Response:
    """End every session of another user (or one's own)."""
    store = context_of(request).store
    name = _named(request)
    try:
        await run_in_threadpool(store.end_sessions, name)
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    await run_in_threadpool(store.audit, user, "logged out everywhere", None, user=name)
    return RedirectResponse("/users", status_code=303)


@action
async def user_remove(request: Request, user: str, form: FormData) -> Response:
    store = context_of(request).store
    name = _named(request)
    try:
        await run_in_threadpool(store.remove_user, name)
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    except ConfigError as err:
        return await _refused(request, err)
    await run_in_threadpool(store.audit, user, "user removed", None, user=name)
    return RedirectResponse("/users", status_code=303)
