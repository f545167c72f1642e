"""Who may see what: every page needs a logged-in user, every change a CSRF token.

``page`` and ``action`` wrap the views; the route-table test checks that every
route except the login page and static files goes through one of them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from web.security import csrf_valid

MAX_FORM_BYTES = 64 * 1024

PageView = Callable[[Request, str], Response]
ActionView = Callable[[Request, str, FormData], Awaitable[Response]]


def current_user(request: Request) -> str | None:
    """The logged-in user, if the session names one that still exists."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    if request.app.state.pvegit.store.password_hash(name) is None:
        request.session.clear()
        return None
    return name


def _to_login(request: Request) -> Response:
    if request.url.path.endswith("/events") or request.headers.get("accept") == "text/event-stream":
        return Response("login required", status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def page(view: PageView) -> Callable[[Request], Awaitable[Response]]:
    """A page for logged-in users; the view runs in a worker thread (it reads git/SQLite)."""

    @functools.wraps(view)
    async def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return _to_login(request)
        return await run_in_threadpool(view, request, user)

    endpoint.guard = "page"  # type: ignore[attr-defined]
    return endpoint


def stream(
    view: Callable[[Request, str], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """An async endpoint (Server-Sent Events) for logged-in users."""

    @functools.wraps(view)
    async def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return _to_login(request)
        return await view(request, user)

    endpoint.guard = "stream"  # type: ignore[attr-defined]
    return endpoint


async def read_form(request: Request) -> FormData:
    """The posted form, refusing bodies over MAX_FORM_BYTES with 413."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise HTTPException(413, "the form is too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
    request._body = body  # let request.form() parse what was already read
    return await request.form(max_files=0)


def action(view: ActionView) -> Callable[[Request], Awaitable[Response]]:
    """A state-changing POST: logged-in user and a valid CSRF token, or 403."""

    @functools.wraps(view)
    async def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return _to_login(request)
        form = await read_form(request)
        if not csrf_valid(request.session, _text(form.get("csrf_token"))):
            raise HTTPException(
                403, "the form's security token is missing or stale; reload the page and try again"
            )
        return await view(request, user, form)

    endpoint.guard = "action"  # type: ignore[attr-defined]
    return endpoint


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
