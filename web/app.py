"""The web application: one route table, read top to bottom."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.errors import PvegitError, RepositoryDamaged
from pvegit.node.tarstream import display_path
from pvegit.service.housekeeping import housekeeping
from pvegit.service.launcher import RunLauncher
from pvegit.service.notify import Notifier, all_targets
from pvegit.service.scheduler import Scheduler
from pvegit.service.status import describe_age
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Store
from pvegit.textsafe import printable
from web import api, gitserve
from web.context import Context, render
from web.security import csrf_token, load_secret_key
from web.views import (
    audit,
    auth,
    browse,
    dashboard,
    hosts,
    notifications,
    restore,
    runs,
    tokens,
    users,
)

_log = logging.getLogger(__name__)

HERE = Path(__file__).parent


ROUTES = [
    Route("/login", auth.login_form, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/logout/everywhere", auth.logout_everywhere, methods=["POST"]),
    Route("/", dashboard.dashboard),
    Route("/hosts", hosts.host_list),
    Route("/hosts", hosts.host_create, methods=["POST"]),
    Route("/hosts/new", hosts.host_new),
    Route("/hosts/{name}", hosts.host_page),
    Route("/hosts/{name}/edit", hosts.host_edit_form),
    Route("/hosts/{name}/edit", hosts.host_update, methods=["POST"]),
    Route("/hosts/{name}/remove", hosts.host_remove, methods=["POST"]),
    Route("/hosts/{name}/test", hosts.host_test, methods=["POST"]),
    Route("/hosts/{name}/trust", hosts.host_trust, methods=["POST"]),
    Route("/hosts/{name}/snapshot", hosts.host_snapshot, methods=["POST"]),
    Route("/hosts/{name}/verify", hosts.host_verify, methods=["POST"]),
    Route("/hosts/{name}/harden", hosts.host_harden, methods=["POST"]),
    Route("/hosts/{name}/commits/{commit}", browse.commit_page),
    Route("/hosts/{name}/compare/{spec}", browse.compare_page),
    Route("/hosts/{name}/tree/{commit}", browse.tree_page),
    Route("/hosts/{name}/tree/{commit}/{path:path}", browse.tree_page),
    Route("/hosts/{name}/history/{path:path}", browse.history_page),
    Route("/hosts/{name}/reveal", browse.reveal_secret, methods=["POST"]),
    Route("/hosts/{name}/restore", restore.restore_form),
    Route("/hosts/{name}/restore/preview", restore.restore_preview, methods=["POST"]),
    Route("/hosts/{name}/restore", restore.restore_run, methods=["POST"]),
    Route("/runs", runs.run_list),
    Route("/runs/{id:int}", runs.run_page),
    Route("/runs/{id:int}/events", runs.run_events),
    Route("/audit", audit.audit_page),
    Route("/tokens", tokens.token_page),
    Route("/tokens", tokens.token_create, methods=["POST"]),
    Route("/tokens/{token}/revoke", tokens.token_revoke, methods=["POST"]),
    Route("/users", users.user_page),
    Route("/users", users.user_create, methods=["POST"]),
    Route("/users/{user}/role", users.user_role, methods=["POST"]),
    Route("/users/{user}/logout", users.user_logout, methods=["POST"]),
    Route("/users/{user}/remove", users.user_remove, methods=["POST"]),
    Route("/notifications", notifications.notifications_page),
    Route("/notifications", notifications.notifications_add, methods=["POST"]),
    Route("/notifications/test", notifications.notifications_test, methods=["POST"]),
    Route("/notifications/{target}/remove", notifications.notifications_remove, methods=["POST"]),
    Route("/api/v1/hosts", api.hosts),
    Route("/api/v1/hosts/{name}/snapshot", api.start_snapshot, methods=["POST"]),
    Route("/api/v1/hosts/{name}/commits", api.commits),
    Route("/api/v1/hosts/{name}/diff", api.diff),
    Route("/api/v1/runs", api.runs),
    Route("/api/v1/runs/{id:int}", api.run),
    Route("/metrics", api.metrics),
    Route("/git/{host}.git/{path:path}", gitserve.git_file, methods=["GET", "POST"]),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]

PUBLIC_PATHS = ("/login", "/static")


def _printable(value: object) -> object:
    """Every printed value: control characters (ESC, BEL: HTML escaping leaves them) and
    bytes that are not UTF-8 shown as \\xNN; newlines and tabs kept for <pre> blocks."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value, lines=True)
    return value


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        finalize=_printable,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["datetime"] = lambda value: (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(value)) if value else "—"
    )
    environment.filters["age"] = lambda value: (
        describe_age(time.time() - value) + " ago" if value else "never"
    )
    environment.filters["urlpath"] = lambda value: quote(display_path(str(value)), safe="/")
    environment.filters["seconds"] = lambda value: "—" if value is None else f"{value:.1f} s"
    # One line whatever the value holds (an audit entry's fields): a newline shows as \x0a.
    environment.filters["oneline"] = lambda value: printable(str(value))
    environment.globals["csrf_token"] = lambda request: csrf_token(request.session)
    return Jinja2Templates(env=environment)


async def _error_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    titles = {
        400: "Not accepted",
        403: "Forbidden",
        404: "Not found",
        413: "Too large",
        429: "Too many attempts",
    }
    return render(
        request,
        "error.html",
        {
            "status": error.status_code,
            "title": titles.get(error.status_code, "Error"),
            "detail": error.detail,
        },
        status_code=error.status_code,
    )


async def _damaged_repository(request: Request, error: Exception) -> Response:
    """A damaged repository: its pages and API answers say so (503), never an empty history."""
    detail = str(error)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": detail}, status_code=503)
    if request.url.path.startswith("/git/"):
        return PlainTextResponse(detail + "\n", status_code=503)
    values = {"status": 503, "title": "Repository damaged", "detail": detail}
    return render(request, "error.html", values, status_code=503)


def create_app(
    home: Home,
    config: Config | None = None,
    *,
    store: Store | None = None,
    run_scheduler: bool = False,
    clock: Callable[[], float] = time.time,
    tick_seconds: int = 1,
) -> Starlette:
    """The ASGI app for one pvegit home; with ``run_scheduler`` also the scheduler and
    housekeeping. ``config`` (pvegit.toml with serve's options) holds every knob it reads."""
    config = config or Config()
    home.initialize()
    store = store or Store(home.state_path)
    notifier = Notifier(lambda: all_targets(config, store))
    launcher = RunLauncher(home, store, config, notifier=notifier)
    context = Context(
        home,
        store,
        config,
        launcher,
        notifier=notifier,
        templates=_templates(),
        clock=clock,
    )
    scheduler = Scheduler(
        store,
        config,
        lambda host, trigger: launcher.launch(host, trigger=trigger, actor="scheduler"),
        clock=clock,
        running=launcher.active,
    )
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=load_secret_key(home.root / "web_secret"),
            session_cookie="pvegit_session",
            max_age=config.session_max_seconds,
            same_site="lax",
            https_only=config.behind_tls_proxy,
        )
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if run_scheduler:
            # The runs a previous serve left 'running' would keep their hosts
            # off the schedule until the first housekeeping: settle them now.
            try:
                settle_runs(home, store)
            except PvegitError as err:  # a full disk: serve still starts and says so
                _log.error("could not settle the runs left running: %s", err)
            scheduler.start(
                tick_seconds,
                housekeeping=lambda: housekeeping(home, store, config, notifier, now=clock()),
            )
        yield
        scheduler.stop()
        launcher.shutdown()
        notifier.close()

    app = Starlette(
        routes=ROUTES,
        middleware=middleware,
        exception_handlers={HTTPException: _error_page, RepositoryDamaged: _damaged_repository},
        lifespan=lifespan,
    )
    app.state.pvegit = context
    app.state.scheduler = scheduler
    return app
