"""Login, logout, and logging out everywhere."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.actions.users import end_sessions
from pvegit.config.roles import VIEWER
from pvegit.state.credentials import verify_password
from web.context import context_of, render
from web.guard import action, read_form, start_session
from web.security import claimed_user, csrf_valid


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect a fresh login to another site."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login_form(request: Request) -> Response:
    return render(
        request,
        "login.html",
        {"error": None, "username": "", "next": _safe_next(request.query_params.get("next"))},
    )


async def login(request: Request) -> Response:
    context = context_of(request)
    form = await read_form(request)
    token = form.get("csrf_token")
    if not csrf_valid(request.session, token if isinstance(token, str) else None):
        raise HTTPException(
            403, "the login form's security token is missing or stale; reload the page"
        )
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{username}", f"address:{client}")
    wait = context.throttle.wait_seconds(*keys)
    if wait > 0:
        return render(
            request,
            "login.html",
            {
                "error": f"Too many failed attempts. Try again in {wait:.0f} s.",
                "username": username,
                "next": target,
            },
            status_code=429,
        )
    account = await run_in_threadpool(context.store.user, username)
    stored = account.password_hash if account else None
    valid = await run_in_threadpool(verify_password, password, stored)
    if not valid or account is None:
        context.throttle.failed(*keys)
        await run_in_threadpool(
            context.store.audit, claimed_user(username), "login failed", None, address=client
        )
        return render(
            request,
            "login.html",
            {"error": "Wrong user name or password.", "username": username, "next": target},
            status_code=401,
        )
    context.throttle.succeeded(f"user:{username}")
    start_session(request, account)
    await run_in_threadpool(context.store.audit, username, "login", None, address=client)
    return RedirectResponse(target, status_code=303)


@action(role=VIEWER)
async def logout(request: Request, user: str, form: object) -> Response:
    request.session.clear()
    await run_in_threadpool(context_of(request).store.audit, user, "logout", None)
    return RedirectResponse("/login", status_code=303)


@action(role=VIEWER)
async def logout_everywhere(request: Request, user: str, form: object) -> Response:
    """End every session of the signed-in user, this one included (a lost laptop)."""
    await run_in_threadpool(lambda: end_sessions(context_of(request).store, user, actor=user))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
