"""Hosts: the list, the host page, add/edit/remove, test connection, trust, back up now."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pvegit.config import host_settings
from pvegit.config.categories import CATALOGUE, DEFAULT_CATEGORIES
from pvegit.config.roles import ADMIN, OPERATOR
from pvegit.errors import ConfigError, NotFound, PvegitError
from pvegit.git.repo import HostRepository
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


_FORM_FIELDS = ("address", "port", "user", "categories", "includes", "excludes", "schedule")


def _locked(host: Host | None) -> tuple[str, ...]:
    """The fields the form shows but does not let change: a local host's where and what."""
    if host is None or not host.is_local:
        return ()
    return tuple(
        field for field in _FORM_FIELDS if field not in host_settings.LOCAL_CHANGEABLE_FROM_WEB
    )


def _read_host_form(form: FormData, *, current: Host | None) -> tuple[HostForm, dict[str, Any]]:
    """Check every field; return the form as typed with its errors, and the checked values.

    Without ``current`` it is a new host (with a name); with it, an edit, where
    the fields the form locks keep the host's values unless they were sent.
    """
    with_name = current is None
    if current is not None:
        kept = _form_of(current).values
        form = FormData(
            [*form.multi_items()]
            + [
                (field, value)
                for field in _locked(current)
                if field not in form
                for value in (kept[field] if field == "categories" else [kept[field]])
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
    # The web never makes a local host; an edit may only keep the one it has.
    keeps_local = current is not None and raw["address"].strip() == current.address
    checks: dict[str, Callable[[Any], Any]] = {
        "address": functools.partial(host_settings.check_address, local_allowed=keeps_local),
        "port": host_settings.check_port,
        "user": host_settings.check_user,
        "categories": host_settings.check_categories,
        "includes": lambda text: host_settings.check_includes(text.splitlines()),
        "excludes": lambda text: host_settings.check_excludes(text.splitlines()),
        "schedule": host_settings.check_schedule,
    }
    if with_name:
        checks = {"name": host_settings.check_name, **checks}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, check in checks.items():
        try:
            values[field] = check(raw[field])
        except ConfigError as err:
            errors[field] = str(err)
    if current is not None and not errors:
        try:
            host_settings.check_web_edit(current, values)
        except ConfigError as err:
            errors["address"] = str(err)
    return HostForm(raw, errors), values


def _form_page(request: Request, form: HostForm, host: Host | None, status: int = 200) -> Response:
    return render(
        request,
        "host_form.html",
        {
            "nav": "hosts",
            "form": form,
            "host": host,
            "catalogue": CATALOGUE,
            "locked": _locked(host),
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
        host = await run_in_threadpool(context.store.add_host, Host(**values))
    except ConfigError as err:
        return _form_page(request, HostForm(checked.values, {"name": str(err)}), None, 400)
    await run_in_threadpool(
        context.store.audit, user, "host added", host.name, address=host.address, via="web"
    )
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
    if values["address"] != host.address or values["port"] != host.port:
        # Another address is another machine until its key is checked again.
        values.update(host_key=None, host_key_type=None)
    await run_in_threadpool(lambda: context.store.update_host(host.name, **values))
    await run_in_threadpool(
        context.store.audit, user, "host edited", host.name, changed=sorted(values), via="web"
    )
    return RedirectResponse(f"/hosts/{host.name}", status_code=303)


@action
async def host_remove(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    await run_in_threadpool(context.store.remove_host, host.name)
    await run_in_threadpool(context.store.audit, user, "host removed", host.name, via="web")
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
        },
    )


# -- actions -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """What "test connection" found."""

    reached: bool
    message: str
    key_type: str | None = None
    fingerprint: str | None = None
    pinned_fingerprint: str | None = None
    key_state: str = "unknown"  # "trusted", "new", "changed", "local", "unknown"
    steps: tuple[tuple[bool, str], ...] = ()


def _check_connection(context: Any, host: Host) -> ConnectionCheck:
    if host.is_local:
        return ConnectionCheck(
            True,
            "reached locally: no SSH, no host key",
            key_state="local",
            steps=_probe_steps(context, host),
        )
    from pvegit.node.ssh import fingerprint, scan_host_key

    try:
        key_type, key_blob = scan_host_key(host.address, host.port)
    except PvegitError as err:
        return ConnectionCheck(False, str(err))
    offered = fingerprint(key_blob)
    pinned = fingerprint(host.host_key) if host.host_key else None
    if host.host_key is None:
        return ConnectionCheck(
            True,
            "the node answered; its host key is not trusted yet",
            key_type,
            offered,
            None,
            "new",
        )
    if host.host_key != key_blob or host.host_key_type != key_type:
        return ConnectionCheck(
            True, "the node's host key CHANGED", key_type, offered, pinned, "changed"
        )
    return ConnectionCheck(
        True,
        "the node answered with its trusted host key",
        key_type,
        offered,
        pinned,
        "trusted",
        _probe_steps(context, host),
    )


def _probe_steps(context: Any, host: Host) -> tuple[tuple[bool, str], ...]:
    from pvegit.node.collect import probe_node, pve_version
    from pvegit.node.transport import open_transport

    steps: list[tuple[bool, str]] = []
    try:
        transport = open_transport(context.home, host)
    except PvegitError as err:
        return ((False, str(err)),)
    try:
        steps.append((True, f"logged in as {host.user}"))
        probe = probe_node(transport)
        steps.append((True, f"the node says it is {probe.hostname!r} (uid {probe.uid})"))
        version = pve_version(transport)
        steps.append((bool(version), f"PVE version: {version or 'unknown'}"))
        problem = probe.pmxcfs_problem(live=transport.live)
        steps.append((problem is None, f"pmxcfs: {problem or '/etc/pve is served'}"))
    except PvegitError as err:
        steps.append((False, str(err)))
    finally:
        transport.close()
    return tuple(steps)


@action(role=OPERATOR)
async def host_test(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    check = await run_in_threadpool(_check_connection, context, host)
    await run_in_threadpool(
        context.store.audit,
        user,
        "connection tested",
        host.name,
        result=check.key_state,
        reached=check.reached,
    )
    return render(request, "host_test.html", {"nav": "hosts", "host": host, "check": check})


@action
async def host_trust(request: Request, user: str, form: FormData) -> Response:
    from pvegit.node.ssh import fingerprint, scan_host_key

    context = context_of(request)
    host = find_host(request)
    expected = str(form.get("fingerprint", "")).strip()
    try:
        key_type, key_blob = await run_in_threadpool(scan_host_key, host.address, host.port)
    except PvegitError as err:
        raise HTTPException(400, f"could not reach the node to read its key: {err}") from err
    offered = fingerprint(key_blob)
    if offered != expected:
        raise HTTPException(
            400,
            f"the node now offers {offered}, not the {expected} you confirmed; "
            "nothing was trusted. Test the connection again.",
        )
    previous = fingerprint(host.host_key) if host.host_key else None
    await run_in_threadpool(
        lambda: context.store.update_host(host.name, host_key_type=key_type, host_key=key_blob)
    )
    await run_in_threadpool(
        context.store.audit,
        user,
        "host key trusted",
        host.name,
        fingerprint=offered,
        replaced=previous,
        via="web",
    )
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


@action(role=OPERATOR)
async def host_snapshot(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = find_host(request)
    run_id = await run_in_threadpool(context.launcher.launch, host, trigger="web", actor=user)
    await run_in_threadpool(context.store.audit, user, "backup triggered", host.name, run=run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
