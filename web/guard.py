"""Who may see what: every page needs a logged-in user with a role high enough,
every change also a CSRF token.

``page``, ``stream`` and ``action`` wrap the views and are the only place a
web route checks its role (``web.api.api`` for the API, gitserve for git).
A page asks for ``viewer`` unless it says otherwise; an action for ``admin``
unless it says otherwise, so a new action is admin-only until someone decides
it is not. The route-table tests check every route against every role.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, overload
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.config.roles import ADMIN, VIEWER, allows
from pvegit.state.store import User
from web.context import context_of
from web.security import csrf_valid

MAX_FORM_BYTES = 64 * 1024

PageView = Callable[[Request, str], Response]
StreamView = Callable[[Request, str], Awaitable[Response]]
ActionView = Callable[[Request, str, FormData], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def start_session(request: Request, user: User) -> None:
    """A fresh session for ``user`` (no fixation): stamped with the account's incarnation,
    its epoch and the time."""
    now = context_of(request).clock()
    request.session.clear()
    request.session.update(
        {
            "user": user.name,
            "incarnation": user.incarnation,
            "epoch": user.sessions_epoch,
            "issued": now,
            "seen": now,
        }
    )


def current_user(request: Request) -> User | None:
    """The session's user, if the session is still good.

    A session ends when its user is removed (an account made again under the
    same name has another incarnation), when the user's epoch moved on
    (password changed, role lowered, logged out everywhere), after
    ``session_max`` since login and after ``session_idle`` without a request.
    """
    session = request.session
    name = session.get("user")
    if not isinstance(name, str):
        return None
    context = context_of(request)
    user = context.store.user(name)
    now = context.clock()
    issued, seen = session.get("issued"), session.get("seen")
    config = context.config
    if (
        user is None
        or not user.incarnation
        or session.get("incarnation") != user.incarnation
        or session.get("epoch") != user.sessions_epoch
        or not isinstance(issued, (int, float))
        or not isinstance(seen, (int, float))
        or now - issued > config.session_max_seconds
        or now - seen > config.session_idle_seconds
    ):
        session.clear()
        return None
    session["seen"] = now
    return user


def _to_login(request: Request) -> Response:
    if request.url.path.endswith("/events") or request.headers.get("accept") == "text/event-stream":
        return Response("login required", status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _admit(request: Request, role: str) -> User | Response:
    """The user, or where to send the request instead; HTTPException 403 for a low role."""
    user = current_user(request)
    if user is None:
        return _to_login(request)
    request.state.user = user
    if not allows(user.role, role):
        raise HTTPException(
            403,
            f"this needs the {role} role and {user.name} is a {user.role}; "
            "an admin can change roles on the Users page",
        )
    return user


def _mark(endpoint: Endpoint, guard: str, role: str) -> Endpoint:
    endpoint.guard = guard  # type: ignore[attr-defined]
    endpoint.role = role  # type: ignore[attr-defined]
    return endpoint


@overload
def page(view: PageView, /) -> Endpoint: ...
@overload
def page(*, role: str) -> Callable[[PageView], Endpoint]: ...
def page(
    view: PageView | None = None, /, *, role: str = VIEWER
) -> Endpoint | Callable[[PageView], Endpoint]:
    """A page for users with ``role`` or higher (viewer unless given); the view runs in a
    worker thread (it reads git/SQLite)."""

    def decorate(view: PageView) -> Endpoint:
        @functools.wraps(view)
        async def endpoint(request: Request) -> Response:
            admitted = _admit(request, role)
            if isinstance(admitted, Response):
                return admitted
            return await run_in_threadpool(view, request, admitted.name)

        return _mark(endpoint, "page", role)

    return decorate(view) if view is not None else decorate


def stream(view: StreamView) -> Endpoint:
    """An async endpoint (Server-Sent Events) for logged-in users (viewer and up)."""

    @functools.wraps(view)
    async def endpoint(request: Request) -> Response:
        admitted = _admit(request, VIEWER)
        if isinstance(admitted, Response):
            return admitted
        return await view(request, admitted.name)

    return _mark(endpoint, "stream", VIEWER)


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


@overload
def action(view: ActionView, /) -> Endpoint: ...
@overload
def action(*, role: str) -> Callable[[ActionView], Endpoint]: ...
def action(
    view: ActionView | None = None, /, *, role: str = ADMIN
) -> Endpoint | Callable[[ActionView], Endpoint]:
    """A state-changing POST: a user with ``role`` or higher (admin unless given) and a
    valid CSRF token, or 403."""

    def decorate(view: ActionView) -> Endpoint:
        @functools.wraps(view)
        async def endpoint(request: Request) -> Response:
            admitted = _admit(request, role)
            if isinstance(admitted, Response):
                return admitted
            form = await read_form(request)
            if not csrf_valid(request.session, _text(form.get("csrf_token"))):
                raise HTTPException(
                    403,
                    "the form's security token is missing or stale; reload the page and try again",
                )
            return await view(request, admitted.name, form)

        return _mark(endpoint, "action", role)

    return decorate(view) if view is not None else decorate


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
