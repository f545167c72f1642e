"""The JSON API under /api/v1/ and the Prometheus /metrics, both for API tokens.

A request without a valid token gets 401 before anything is looked up, so a
wrong token never tells whether a host exists; a token whose role is too low
gets 403, also before anything is looked up. Errors are JSON:
``{"error": "what went wrong and what to do"}``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, overload

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pvegit.config.roles import OPERATOR, VIEWER, allows
from pvegit.content.filediff import read_diff
from pvegit.errors import ConfigError, NotFound
from pvegit.git.repo import HostRepository
from pvegit.node.allowlist import list_state
from pvegit.node.tarstream import display_path
from pvegit.service.progress import run_progress
from pvegit.state.credentials import hash_token
from pvegit.state.index import commit_count, sync_index, timeline
from pvegit.state.liveness import settle_runs, settled_run
from pvegit.state.store import Host, RunStatus, Store, Token
from web.context import context_of


def bearer_token(request: Request) -> Token | None:
    """The valid, unrevoked token of the request's ``Authorization: Bearer``; None otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return context_of(request).store.active_token(hash_token(token.strip()))


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


ApiView = Callable[[Request, str], Any]
Endpoint = Callable[[Request], Awaitable[Response]]

_NO_TOKEN = "a valid API token is required: Authorization: Bearer <token>"


@overload
def api(view: ApiView, /) -> Endpoint: ...
@overload
def api(*, role: str) -> Callable[[ApiView], Endpoint]: ...
def api(
    view: ApiView | None = None, /, *, role: str = VIEWER
) -> Endpoint | Callable[[ApiView], Endpoint]:
    """An API endpoint: a bearer token with ``role`` or higher (viewer unless given);
    the view gets ``token:NAME`` and returns JSON-able data."""

    def decorate(view: ApiView) -> Endpoint:
        @functools.wraps(view)
        async def endpoint(request: Request) -> Response:
            token = await run_in_threadpool(bearer_token, request)
            if token is None:
                return JSONResponse(
                    {"error": _NO_TOKEN}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
            if not allows(token.role, role):
                return error(
                    403,
                    f"this needs a token with the {role} role; {token.name!r} is a "
                    f"{token.role} token (make one with: pvegit token add NAME --role {role})",
                )
            try:
                result = await run_in_threadpool(view, request, f"token:{token.name}")
            except ApiError as err:
                return error(err.status, str(err))
            except NotFound as err:
                return error(404, str(err))
            except ConfigError as err:
                return error(400, str(err))
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        endpoint.guard = "api"  # type: ignore[attr-defined]
        endpoint.role = role  # type: ignore[attr-defined]
        return endpoint

    return decorate(view) if view is not None else decorate


def _host(store: Store, request: Request) -> Host:
    return store.host(request.path_params["name"])


def _number(request: Request, key: str, default: int, high: int) -> int:
    text = request.query_params.get(key)
    if text is None:
        return default
    if not text.isdigit() or not 0 < int(text) <= high:
        raise ApiError(400, f"{key} must be a whole number from 1 to {high}")
    return int(text)


@api
def hosts(request: Request, user: str) -> list[dict[str, Any]]:
    from web.views.dashboard import fleet_rows

    out = []
    for row in fleet_rows(request):
        status, change = row.status, row.last_change
        out.append(
            {
                **row.host.to_json(),
                "allow_list": list_state(row.host),
                "status": {"kind": status.kind, "label": status.label, "reason": status.reason},
                "last_success": status.last_success.finished_at if status.last_success else None,
                "last_run": status.last_run.to_json() if status.last_run else None,
                "last_change": {
                    "commit": change.commit_id,
                    "time": change.time,
                    "subject": change.subject,
                }
                if change
                else None,
                "next_run": row.next_run,
            }
        )
    return out


@api(role=OPERATOR)
def start_snapshot(request: Request, user: str) -> Response:
    context = context_of(request)
    host = _host(context.store, request)
    run_id = context.launcher.launch(host, trigger="api", actor=user)
    context.store.audit(user, "backup triggered", host.name, run=run_id, via="api")
    return JSONResponse({"run": run_id, "url": f"/api/v1/runs/{run_id}"}, status_code=202)


@api
def runs(request: Request, user: str) -> list[dict[str, Any]]:
    text = request.query_params.get("status")
    status = RunStatus.parse(text)
    if text is not None and status is None:
        raise ApiError(400, f"status must be one of: {', '.join(RunStatus)}")
    limit = _number(request, "limit", 50, 1000)
    context = context_of(request)
    host = request.query_params.get("host")
    settle_runs(context.home, context.store, host)
    found = context.store.runs(host, limit=limit, status=status)
    return [run.to_json() for run in found]


@api
def run(request: Request, user: str) -> dict[str, Any]:
    context = context_of(request)
    found = settled_run(context.home, context.store, request.path_params["id"])
    return {**found.to_json(), "progress": run_progress(found).to_json()}


@api
def commits(request: Request, user: str) -> dict[str, Any]:
    context = context_of(request)
    host = _host(context.store, request)
    limit = _number(request, "limit", 50, 500)
    before = request.query_params.get("before")
    path = context.home.repo_path(host.name)
    if path.exists():
        with HostRepository(path) as repository:
            sync_index(context.store, repository, host.name)
    found = timeline(
        context.store,
        host.name,
        limit=limit,
        before=int(before) if before and before.isdigit() else None,
    )
    return {
        "host": host.name,
        "total": commit_count(context.store, host.name),
        "commits": [
            {
                "commit": item.commit_id,
                "position": item.position,
                "time": item.time,
                "subject": item.subject,
                "trigger": item.trigger,
                "actor": item.actor,
                "files_changed": item.files_changed,
                "parent": item.parent_id,
            }
            for item in found
        ],
    }


@api
def diff(request: Request, user: str) -> dict[str, Any]:
    context = context_of(request)
    host = _host(context.store, request)
    path = context.home.repo_path(host.name)
    if not path.exists():
        raise ApiError(404, f"{host.name} has no snapshots yet")
    with HostRepository(path) as repository:
        new = repository.resolve(request.query_params.get("b") or "HEAD")
        first = request.query_params.get("a")
        if first:
            old: str | None = repository.resolve(first)
        else:
            parents = repository.commit(new).parents
            old = parents[0] if parents else None
        files = []
        for change in repository.changes(old, new):
            found = read_diff(repository, change)
            entry: dict[str, Any] = {
                "path": "/" + display_path(change.path),
                "change": change.change.value,
                "kind": found.kind,
            }
            if found.kind == "text":
                entry.update(
                    added=found.added,
                    removed=found.removed,
                    masked=found.masked,
                    diff=found.unified(),
                )
            else:
                entry.update(sizes=[found.old_size, found.new_size], diff=None)
            files.append(entry)
    return {"host": host.name, "a": old, "b": new, "files": files}


async def metrics(request: Request) -> Response:
    """Prometheus metrics: for API tokens, or open to the addresses in metrics_allow."""
    context = context_of(request)
    client = request.client.host if request.client else ""
    allowed = client in context.config.metrics_allow
    if not allowed and await run_in_threadpool(bearer_token, request) is None:
        return JSONResponse(
            {"error": f"{_NO_TOKEN} (or list this address in metrics_allow)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    from web.metrics import render_metrics

    body, content_type = await run_in_threadpool(render_metrics, context)
    return Response(body, media_type=content_type)


metrics.guard = "api"  # type: ignore[attr-defined]
metrics.role = VIEWER  # type: ignore[attr-defined]  # any valid token
