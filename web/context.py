"""What the views share: settings, the engine's handles, and rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from pvegit.config import Config
from pvegit.home import Home
from pvegit.notify import Notifier
from pvegit.store import Store
from web.runner import RunLauncher
from web.security import LoginThrottle


@dataclass
class Settings:
    """How the web app behaves; `pvegit serve` fills it from its options."""

    secure_cookies: bool = False  # behind a TLS reverse proxy
    concurrency: int = 4
    default_schedule: str = "daily"
    session_seconds: int = 12 * 3600
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
    templates: Jinja2Templates | None = None


def context_of(request: Request) -> Context:
    """The app's Context."""
    value: Context = request.app.state.pvegit
    return value


def render(
    request: Request, template: str, values: dict[str, Any], status_code: int = 200
) -> Response:
    """Render a template with the values every page needs."""
    context = context_of(request)
    assert context.templates is not None
    values.setdefault("user", request.session.get("user"))
    values.setdefault("nav", "")
    return context.templates.TemplateResponse(request, template, values, status_code=status_code)
