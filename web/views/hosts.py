"""Hosts: the list, the host page, add/edit/remove, test connection, trust, back up now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.actions.connection import (
    AccessChecked,
    ConnectionCheck,
    Identified,
    LoggedIn,
    PmxcfsChecked,
    Step,
    Stopped,
    VersionRead,
    check_connection,
)
from pvegit.actions.hosts import add_host, edit_host, remove_host
from pvegit.actions.trust import trust_confirmed_key
from pvegit.config import host_settings
from pvegit.config.categories import CATALOGUE, DEFAULT_CATEGORIES
from pvegit.config.roles import ADMIN, OPERATOR
from pvegit.errors import ConfigError, HostKeyMismatch, NotFound, PvegitError
from pvegit.git.repo import HostRepository
from pvegit.node.access import RESTRICTED, access_words
from pvegit.node.allowlist import list_words
from pvegit.service.status import host_status
from pvegit.state.index import commit_count, sync_index, timeline
from pvegit.state.liveness import settle_runs
from pvegit.state.store import Host
from web.context import context_of, render
from web.guard import action, page
from web.views.dashboard import fleet_rows, next_run_at

TIMELINE_PAGE = 30


def find_host(request: Request, name: str | None = None) -> Host:
    """The host named in the URL, or the 404 page."""
    try:
        return context_of(request).store.host(name or request.path_params["name"])
    except NotFound as err:
        raise HTTPException(404, str(err)) from err


@page
def host_list(request: Request, user: str) -> Response:
    context = context_of(request)
    return render(
        request,
        "hosts.html",
        {
            "nav": "hosts",
            "rows": fleet_rows(request),
            "public_key": context.home.public_key(),
        },
    )


# -- the form ------------------------------------------------------------------


@dataclass(frozen=True)
class HostForm:
    """What the add/edit form shows: the values as typed, and what is wrong with them."""

    values: dict[str, Any]
    errors: dict[str, str]


def _blank_form() -> HostForm:
    return HostForm(
        {
            "name": "",
            "address": "",
            "port": "22",
            "user": "root",
            "categories": list(DEFAULT_CATEGORIES),
            "includes": "",
            "excludes": "",
            "schedule": "",
        },
        {},
    )


def _form_of(host: Host) -> HostForm:
    return HostForm(
        {
            "name": host.name,
            "address": host.address,
            "port": str(host.port),
            "user": host.user,
            "categories": list(host.categories),
            "includes": "\n".join(host.includes),
            "excludes": "\n".join(host.excludes),
            "schedule": host.schedule or "",
        },
        {},
    )


def _read_host_form(form: FormData, *, current: Host | None) -> tuple[HostForm, dict[str, Any]]:
    """The form as typed with each field's error, and the checked values.

    Without ``current`` it is a new host (with a name); with it, an edit, where
    the fields the form locks keep the host's values unless they were sent.
    """
    if current is not None:
        kept = _form_of(current).values
        form = FormData(
            [*form.multi_items()]
            + [
                (name, value)
                for name in host_settings.locked_from_web(current)
                if name not in form
                for value in (kept[name] if name == "categories" else [kept[name]])
            ]
        )
    raw: dict[str, Any] = {
        "name": str(form.get("name", "")),
        "address": str(form.get("address", "")),
        "port": str(form.get("port", "22")),
        "user": str(form.get("user", "root")),
        "categories": [str(value) for value in form.getlist("categories")],
        "includes": str(form.get("includes", "")),
        "excludes": str(form.get("excludes", "")),
        "schedule": str(form.get("schedule", "")),
    }
    given = {
        **raw,
        "includes": raw["includes"].splitlines(),
        "excludes": raw["excludes"].splitlines(),
    }
    if current is not None:
        del given["name"]
    checked = host_settings.check_settings(given, current=current, as_root=False)
    return HostForm(raw, checked.errors), checked.values


def _form_page(request: Request, form: HostForm, host: Host | None, status: int = 200) -> Response:
    return render(
        request,
        "host_form.html",
        {
            "nav": "hosts",
            "form": form,
            "host": host,
            "catalogue": CATALOGUE,
            "locked": host_settings.locked_from_web(host),
        },
        status_code=status,
    )


@page(role=ADMIN)
def host_new(request: Request, user: str) -> Response:
    return _form_page(request, _blank_form(), None)


@action
async def host_create(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    checked, values = _read_host_form(form, current=None)
    if checked.errors:
        return _form_page(request, checked, None, status=400)
    try:
        host = await run_in_threadpool(
            lambda: add_host(context.store, values["name"], values, actor=user, via="web")
        )
    except ConfigError as err:
        return _form_page(request, HostForm(checked.values, {"name": str(err)}), None, 400)
    return RedirectResponse(f"/hosts/{host.name}", status_code=303)


@page(role=ADMIN)
def host_edit_form(request: Request, user: str) -> Response:
    host = find_host(request)
    return _form_page(request, _form_of(host), host)


@action
async def host_update(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    checked, values = _read_host_form(form, current=host)
    if checked.errors:
        return _form_page(
            request,
            HostForm({**checked.values, "name": host.name}, checked.errors),
            host,
            status=400,
        )
    await run_in_threadpool(
        lambda: edit_host(context.home, context.store, host, values, actor=user, via="web")
    )
    return RedirectResponse(f"/hosts/{host.name}", status_code=303)


@action
async def host_remove(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    await run_in_threadpool(
        lambda: remove_host(context.home, context.store, host.name, actor=user, via="web")
    )
    return RedirectResponse("/hosts", status_code=303)


# -- the host page ---------------------------------------------------------------


@page
def host_page(request: Request, user: str) -> Response:
    context = context_of(request)
    store = context.store
    host = find_host(request)
    before_text = request.query_params.get("before")
    before = int(before_text) if before_text and before_text.isdigit() else None
    repository_path = context.home.repo_path(host.name)
    if repository_path.exists():
        with HostRepository(repository_path) as repository:
            sync_index(store, repository, host.name)
    commits = timeline(store, host.name, limit=TIMELINE_PAGE, before=before)
    settle_runs(context.home, store, host.name)
    runs = store.runs(host.name, limit=15)
    last_success = store.last_success(host.name)
    status = host_status(
        host,
        runs[0] if runs else None,
        last_success,
        default_schedule=context.config.default_schedule,
        stale_factor=context.config.stale_factor,
    )
    allow_words = list_words(host)
    return render(
        request,
        "host.html",
        {
            "nav": "hosts",
            "host": host,
            "status": status,
            "next_run": next_run_at(context, host, runs),
            "commits": commits,
            "total_commits": commit_count(store, host.name),
            "older": commits[-1].position if commits and commits[-1].position > 1 else None,
            "newer": before is not None,
            "runs": runs,
            "public_key": context.home.public_key(),
            "access": access_words(host.access_kind, host.name),
            "allow_list": allow_words,
            "may_harden": not host.is_local
            and (host.access_kind != RESTRICTED or allow_words is not None),
        },
    )


# -- actions -----------------------------------------------------------------------


# What the page says about the key, by the state the engine found.
_KEY_MESSAGES = {
    "local": "reached locally: no SSH, no host key",
    "new": "the node answered; its host key is not trusted yet",
    "changed": "the node's host key CHANGED",
    "trusted": "the node answered with its trusted host key",
}


@dataclass(frozen=True)
class ConnectionPage:
    """The test result in the page's words: the headline and one line per step."""

    reached: bool
    message: str
    key_state: str
    key_type: str | None
    fingerprint: str | None
    pinned_fingerprint: str | None
    steps: tuple[tuple[bool, str], ...]


def _step_line(step: Step) -> tuple[bool, str]:
    match step:
        case LoggedIn(user=user):
            return True, f"logged in as {user}"
        case AccessChecked():
            return step.ok, f"access: {step.describe()}"
        case Identified(hostname=hostname, uid=uid):
            return True, f"the node says it is {hostname!r} (uid {uid})"
        case VersionRead(version=version):
            return step.ok, f"PVE version: {version or 'unknown'}"
        case PmxcfsChecked(problem=problem):
            return step.ok, f"pmxcfs: {problem or '/etc/pve is served'}"
        case Stopped(problem=problem):
            return False, problem


def _connection_page(check: ConnectionCheck) -> ConnectionPage:
    offered = check.offered
    return ConnectionPage(
        reached=check.reached,
        message=check.problem or _KEY_MESSAGES[check.state],
        key_state=check.state,
        key_type=offered.key_type if offered else None,
        fingerprint=offered.fingerprint if offered else None,
        pinned_fingerprint=check.pinned_fingerprint,
        steps=tuple(_step_line(step) for step in check.steps),
    )


@action(role=OPERATOR)
async def host_test(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    check = await run_in_threadpool(check_connection, context.home, context.store, host, actor=user)
    return render(
        request,
        "host_test.html",
        {"nav": "hosts", "host": host, "check": _connection_page(check)},
    )


@action
async def host_trust(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    expected = str(form.get("fingerprint", "")).strip()
    try:
        await run_in_threadpool(
            lambda: trust_confirmed_key(
                context.home, context.store, host, expected, actor=user, via="web"
            )
        )
    except HostKeyMismatch as err:
        raise HTTPException(
            400,
            f"the node now offers {err.fingerprint}, not the {err.expected} you confirmed; "
            "nothing was trusted. Test the connection again.",
        ) from err
    except PvegitError as err:
        raise HTTPException(400, f"could not reach the node to read its key: {err}") from err
    return RedirectResponse(f"/hosts/{host.name}", status_code=303)


@action(role=OPERATOR)
async def host_verify(request: Request, user: str, form: FormData) -> Response:
    """Check the repository, the run log, and (after a snapshot) the node."""
    from pvegit.actions.verify import verify_host

    context = context_of(request)
    host = find_host(request)
    result = await run_in_threadpool(verify_host, context.home, context.store, host)
    await run_in_threadpool(
        context.store.audit, user, "verify", host.name, ok=result.ok, problems=len(result.problems)
    )
    return render(request, "verify.html", {"nav": "hosts", "host": host, "result": result})


@action
async def host_harden(request: Request, user: str, form: FormData) -> Response:
    """Make pvegit's key read-only on the node (admin): over the key while it still opens a
    shell, else with root's password from the form, used for this one login only."""
    from pvegit.actions.harden import harden_host

    context = context_of(request)
    host = find_host(request)
    password = str(form.get("password", "")) or None  # never stored, never logged
    try:
        await run_in_threadpool(
            lambda: harden_host(context.home, context.store, host, password=password, actor=user)
        )
    except PvegitError as err:
        raise HTTPException(400, f"{host.name} was not hardened: {err}") from err
    return RedirectResponse(f"/hosts/{host.name}", status_code=303)


@action(role=OPERATOR)
async def host_snapshot(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    run_id = await run_in_threadpool(context.launcher.launch, host, trigger="web", actor=user)
    await run_in_threadpool(context.store.audit, user, "backup triggered", host.name, run=run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
