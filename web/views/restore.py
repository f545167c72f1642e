"""Restore from the web UI: pick revision and paths, preview, confirm."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pvegit.actions.restore import RestoreReport, restore_to_node
from pvegit.actions.restore_access import RestoreCredential
from pvegit.actions.restore_plan import RestoreOptions, RestorePlan, plan_restore, restored_paths
from pvegit.actions.restore_write import read_live
from pvegit.config.host_settings import check_web_restore
from pvegit.config.roles import OPERATOR
from pvegit.config.selection import normalize_node_path, resolve_selection
from pvegit.errors import ConfigError, NotFound, PvegitError
from pvegit.git.repo import HostRepository
from pvegit.node.tarstream import parse_display_path
from pvegit.node.transport import open_transport
from pvegit.state.store import Host
from web.context import context_of, render
from web.guard import action, page
from web.views.hosts import find_host


def _restorable(request: Request) -> Host:
    """The host in the URL; 403 for a local one (only root restores onto this machine)."""
    host = find_host(request)
    try:
        check_web_restore(host)
    except ConfigError as err:
        raise HTTPException(403, str(err)) from err
    return host


def _form(form: FormData | dict[str, str]) -> dict[str, object]:
    return {
        "commit": str(form.get("commit", "HEAD")),
        "paths": str(form.get("paths", "")),
        "write_interfaces": bool(form.get("write_interfaces")),
        "keep_corosync_version": bool(form.get("keep_corosync_version")),
        "delete": bool(form.get("delete")),
        "accept_deletions": bool(form.get("accept_deletions")),
    }


def _paths(text: str) -> list[str]:
    paths = [
        normalize_node_path(parse_display_path(line), allow_pvegit=False)
        for line in text.splitlines()
        if line.strip()
    ]
    if not paths:
        raise ConfigError("name at least one path to restore, e.g. /etc/pve/storage.cfg")
    return paths


def _options(values: dict[str, object]) -> RestoreOptions:
    return RestoreOptions(
        write_interfaces=bool(values["write_interfaces"]),
        keep_corosync_version=bool(values["keep_corosync_version"]),
        delete=bool(values["delete"]),
        accept_deletions=bool(values["accept_deletions"]),
    )


def _page(
    request: Request,
    host: Host,
    values: dict[str, object],
    *,
    plan: RestorePlan | None = None,
    error: str | None = None,
    report: RestoreReport | None = None,
) -> Response:
    return render(
        request,
        "restore.html",
        {
            "nav": "hosts",
            "host": host,
            "form": values,
            "plan": plan,
            "error": error,
            "report": report,
        },
        status_code=400 if error else 200,
    )


@page(role=OPERATOR)
def restore_form(request: Request, user: str) -> Response:
    host = _restorable(request)
    values = _form(
        {
            "commit": request.query_params.get("commit", "HEAD"),
            "paths": request.query_params.get("path", ""),
        }
    )
    return _page(request, host, values)


@action(role=OPERATOR)
async def restore_preview(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = _restorable(request)
    values = _form(form)

    def preview() -> RestorePlan:
        paths = _paths(str(values["paths"]))
        with HostRepository(context.home.repo_path(host.name)) as repository:
            commit_id = repository.resolve(str(values["commit"]))
            selection = resolve_selection(host.categories, host.includes, host.excludes)
            transport = open_transport(context.home, host)
            try:
                live = read_live(transport, [*paths, "etc/network/interfaces.new"], selection)
            finally:
                transport.close()
            return plan_restore(repository, commit_id, paths, live, _options(values), selection)

    try:
        plan = await run_in_threadpool(preview)
    except (PvegitError, NotFound) as err:
        return _page(request, host, values, error=str(err))
    return _page(request, host, values, plan=plan)


@action
async def restore_run(request: Request, user: str, form: FormData) -> Response:
    context = context_of(request)
    host = _restorable(request)
    values = _form(form)
    if form.get("confirm") != "yes":
        raise HTTPException(400, "a restore needs the confirmation from its preview page")
    # The second credential: read from this request only, never put in a page, a log or
    # the state (the form re-rendered on an error leaves its fields empty).
    passphrase = str(form.get("restore_passphrase", "")) or None
    root_password = str(form.get("root_password", "")) or None
    credential = (
        RestoreCredential(passphrase=passphrase, root_password=root_password)
        if passphrase or root_password
        else None
    )
    del passphrase, root_password
    try:
        report = await run_in_threadpool(
            lambda: restore_to_node(
                context.home,
                context.store,
                host,
                str(values["commit"]),
                _paths(str(values["paths"])),
                _options(values),
                dry_run=False,
                confirm=lambda plan: True,
                actor=user,
                credential=credential,
            )
        )
    except PvegitError as err:
        return _page(request, host, values, error=str(err))
    if context.notifier is not None:
        from pvegit.service.notify import Event

        context.notifier.emit(
            Event(
                "restore",
                host.name,
                f"{host.name}: restore performed",
                f"{user} restored {restored_paths(report.plan)} from {report.plan.revision[:10]}",
            )
        )
    return _page(request, host, values, plan=report.plan, report=report)
