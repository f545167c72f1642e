"""What the views share: settings, the engine's handles, and rendering."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.config.roles import ADMIN, OPERATOR, allows
from pvegit.service.notify import Notifier
from pvegit.state.store import Store, User
from web.fetchaudit import FetchAudit
from web.runner import RunLauncher
from web.security import LoginThrottle


@dataclass
class Settings:
    """How the web app behaves; `pvegit serve` fills it from its options."""

    secure_cookies: bool = False  # behind a TLS reverse proxy
    concurrency: int = 4
    default_schedule: str = "daily"
    session_idle_seconds: int = 60 * 60  # a session ends after this long without a request
    session_max_seconds: int = 12 * 3600  # and this long after its login, whatever happens
    stale_factor: float = 2.0
    metrics_allow: tuple[str, ...] = ()


@dataclass
class Context:
    """What every view needs, kept on ``app.state.pvegit``."""

    home: Home
    store: Store
    settings: Settings
    launcher: RunLauncher
    config: Config = field(default_factory=Config)
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
