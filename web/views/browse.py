"""Reading history: a commit, a comparison, the tree, a file and its history, secrets."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pvegit.config.selection import is_secret, normalize_node_path
from pvegit.content.filediff import file_content
from pvegit.errors import ConfigError, NotFound
from pvegit.git.repo import SYMLINK_MODE, TREE_MODE, HostRepository
from pvegit.node.tarstream import display_path, parse_display_path
from pvegit.state.index import PathChange, find_commit, path_history, sync_index
from pvegit.state.store import Host
from web.context import context_of, render
from web.diffs import build_diffs
from web.guard import action, page
from web.views.hosts import find_host


def _repository(request: Request, host: Host) -> HostRepository:
    path = context_of(request).home.repo_path(host.name)
    if not path.exists():
        raise HTTPException(404, f"{host.name} has no snapshots yet")
    return HostRepository(path)


def _resolve(repository: HostRepository, revision: str) -> str:
    try:
        return repository.resolve(revision)
    except (NotFound, ConfigError) as err:
        raise HTTPException(404, str(err)) from err


def _path(raw: str) -> str:
    try:
        return normalize_node_path(parse_display_path(raw))
    except ConfigError as err:
        raise HTTPException(404, str(err)) from err


def _split(request: Request) -> bool:
    return request.query_params.get("view") == "split"


@page
def commit_page(request: Request, user: str) -> Response:
    host = find_host(request)
    with _repository(request, host) as repository:
        commit_id = _resolve(repository, request.path_params["commit"])
        commit = repository.commit(commit_id)
        parent = commit.parents[0] if commit.parents else None
        diffs, modes = build_diffs(
            repository, repository.changes(parent, commit_id), split=_split(request)
        )
    return render(
        request,
        "commit.html",
        {
            "nav": "hosts",
            "host": host,
            "commit": commit,
            "parent": parent,
            "indexed": find_commit(context_of(request).store, host.name, commit_id),
            "diffs": diffs,
            "modes": modes,
            "split": _split(request),
            "restore_paths": "\n".join("/" + shown.file.path for shown in diffs),
        },
    )


@page
def compare_page(request: Request, user: str) -> Response:
    host = find_host(request)
    spec = request.path_params["spec"]
    if "..." not in spec:
        raise HTTPException(404, "compare two revisions as /compare/A...B")
    first, second = spec.split("...", 1)
    with _repository(request, host) as repository:
        old_id = _resolve(repository, first)
        new_id = _resolve(repository, second)
        diffs, modes = build_diffs(
            repository, repository.changes(old_id, new_id), split=_split(request)
        )
        old, new = repository.commit(old_id), repository.commit(new_id)
    return render(
        request,
        "compare.html",
        {
            "nav": "hosts",
            "host": host,
            "old": old,
            "new": new,
            "diffs": diffs,
            "modes": modes,
            "split": _split(request),
            "spec": spec,
        },
    )


@dataclass(frozen=True)
class Listing:
    name: str
    path: str
    kind: str  # "dir", "file", "link"
    secret: bool


@page
def tree_page(request: Request, user: str) -> Response:
    host = find_host(request)
    raw_path = request.path_params.get("path", "")
    path = _path(raw_path) if raw_path.strip("/") else ""
    with _repository(request, host) as repository:
        commit_id = _resolve(repository, request.path_params["commit"])
        try:
            kind, _ = repository.lookup(commit_id, path)
        except NotFound as err:
            raise HTTPException(404, str(err)) from err
        if kind == "tree":
            listing = [
                Listing(
                    entry.name,
                    entry.path,
                    "dir"
                    if entry.mode == TREE_MODE
                    else "link"
                    if entry.mode == SYMLINK_MODE
                    else "file",
                    is_secret(entry.path),
                )
                for entry in repository.list_directory(commit_id, path)
            ]
            listing.sort(key=lambda item: (item.kind != "dir", item.name))
            return render(
                request,
                "tree.html",
                {
                    "nav": "hosts",
                    "host": host,
                    "commit_id": commit_id,
                    "path": path,
                    "crumbs": _crumbs(path),
                    "listing": listing,
                },
            )
        mode, data = repository.read_file(commit_id, path)
    history = path_history(context_of(request).store, host.name, path, limit=15)
    return _file_page(
        request,
        host,
        commit_id,
        path,
        data,
        link=mode == SYMLINK_MODE,
        history=history,
        revealed=False,
    )


def _file_page(
    request: Request,
    host: Host,
    commit_id: str,
    path: str,
    data: bytes,
    *,
    link: bool,
    history: list[PathChange],
    revealed: bool,
) -> Response:
    """A file at a revision, as the content model shows it: a secret file not at all and
    secret lines masked, unless ``revealed`` (audited by the caller)."""
    return render(
        request,
        "file.html",
        {
            "nav": "hosts",
            "host": host,
            "commit_id": commit_id,
            "path": path,
            "crumbs": _crumbs(path),
            "content": file_content(path, data, reveal=revealed),
            "link": link,
            "history": history,
        },
    )


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [part for part in path.split("/") if part]
    return [(part, "/".join(parts[: index + 1])) for index, part in enumerate(parts)]


@page
def history_page(request: Request, user: str) -> Response:
    host = find_host(request)
    path = _path(request.path_params["path"])
    context = context_of(request)
    repository_path = context.home.repo_path(host.name)
    if repository_path.exists():
        with HostRepository(repository_path) as repository:
            sync_index(context.store, repository, host.name)
    history = path_history(context.store, host.name, path, limit=200)
    if not history:
        raise HTTPException(404, f"/{display_path(path)} was never in {host.name}'s snapshots")
    return render(
        request,
        "history.html",
        {
            "nav": "hosts",
            "host": host,
            "path": path,
            "crumbs": _crumbs(path),
            "history": history,
        },
    )


@action
async def reveal_secret(request: Request, user: str, form: FormData) -> Response:
    """Show a file with nothing kept back (a secret file, or one whose secret lines are
    masked): an explicit step, written to the audit log."""
    context = context_of(request)
    host = find_host(request)
    path = _path(str(form.get("path", "")))
    revision = str(form.get("commit", ""))

    def read() -> tuple[str, bytes]:
        with _repository(request, host) as repository:
            commit_id = _resolve(repository, revision)
            try:
                return commit_id, repository.read_file(commit_id, path)[1]
            except NotFound as err:
                raise HTTPException(404, str(err)) from err

    commit_id, data = await run_in_threadpool(read)
    shown = file_content(path, data, reveal=True)
    await run_in_threadpool(
        context.store.audit,
        user,
        "secret shown",
        host.name,
        path=f"/{path}",
        commit=commit_id,
        what="secret file" if is_secret(path) else "masked lines" if shown.hidden else "file",
    )
    return _file_page(request, host, commit_id, path, data, link=False, history=[], revealed=True)
