"""What the views share: the configuration, the engine's handles, rendering, and a change
made then redirected."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.config.roles import ADMIN, OPERATOR, allows
from pvegit.errors import NotFound
from pvegit.service.launcher import RunLauncher
from pvegit.service.notify import Notifier
from pvegit.state.store import Store, User
from web.fetchaudit import FetchAudit
from web.security import LoginThrottle


@dataclass
class Context:
    """What every view needs, kept on ``app.state.pvegit``."""

    home: Home
    store: Store
    config: Config  # pvegit.toml with serve's options applied: every knob the app reads
    launcher: RunLauncher
    notifier: Notifier | None = None
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    fetch_audit: FetchAudit = field(default_factory=FetchAudit)  # git reads audited
    templates: Jinja2Templates | None = None
    clock: Callable[[], float] = time.time  # session lifetimes (tests move it)


def context_of(request: Request) -> Context:
    """The app's Context."""
    value: Context = request.app.state.pvegit
    return value


@dataclass(frozen=True)
class Permissions:
    """What the signed-in user's role allows: the pages show only the buttons it can use."""

    role: str | None
    operate: bool
    administer: bool


def permissions_of(request: Request) -> Permissions:
    """The permissions of the user the guard let in (none before that, e.g. on /login)."""
    user = getattr(request.state, "user", None)
    role = user.role if isinstance(user, User) else None
    return Permissions(role, allows(role, OPERATOR), allows(role, ADMIN))


def render(
    request: Request, template: str, values: dict[str, Any], status_code: int = 200
) -> Response:
    """Render a template with the values every page needs (``may``: what the role allows)."""
    context = context_of(request)
    assert context.templates is not None
    values.setdefault("user", request.session.get("user"))
    values.setdefault("may", permissions_of(request))
    values.setdefault("nav", "")
    return context.templates.TemplateResponse(request, template, values, status_code=status_code)


async def change_then_redirect(change: Callable[[], object], back: str) -> Response:
    """Make ``change`` (one engine call, in a worker thread), then see ``back`` (303).

    What it names not existing (NotFound) is the 404 page; other errors pass to the caller.
    """
    try:
        await run_in_threadpool(change)
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    return RedirectResponse(back, status_code=303)
