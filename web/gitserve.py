"""Read-only git over HTTP: ``git clone http://user:password@server/git/pve1.git``.

With git installed on the pvegit machine, the smart protocol through
``git http-backend`` (upload-pack only: one pack, with deltas, made for the
clone). Without it, the "dumb" protocol: git fetches HEAD, info/refs, the pack
list and the packs as plain files; info/refs and objects/info/packs are made
on the fly, so nothing is written into the repositories. Credentials are HTTP
basic: a web user's name and password, or any name with an API token as the
password. Pushes are refused (receive-pack is never offered).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from pvegit.repo import HostRepository
from web.api import hash_token
from web.context import context_of
from web.security import verify_password

_ALLOWED = re.compile(
    r"^(HEAD|info/refs|objects/info/packs|objects/pack/pack-[0-9a-f]{40}\.(pack|idx)"
    r"|objects/[0-9a-f]{2}/[0-9a-f]{38})$"
)
_CACHE_SECONDS = 60.0
_verified: dict[str, float] = {}
_verified_lock = threading.Lock()


def _authorized(request: Request) -> bool:
    """Basic credentials of a web user, or an API token as the password."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # A clone makes several requests: remember good credentials for a minute
    # instead of paying the password hash each time.
    key = hashlib.sha256(header.encode()).hexdigest()
    now = time.monotonic()
    with _verified_lock:
        if _verified.get(key, 0) > now:
            return True
    store = context_of(request).store
    good = store.token_by_hash(hash_token(password)) is not None or verify_password(
        password, store.password_hash(user)
    )
    if good:
        with _verified_lock:
            _verified[key] = now + _CACHE_SECONDS
    return good


_BACKEND = shutil.which("git")


async def git_file(request: Request) -> Response:
    if not await run_in_threadpool(_authorized, request):
        return Response(
            "credentials required (a pvegit user, or an API token as password)\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="pvegit"'},
        )
    context = context_of(request)
    name = request.path_params["host"]
    path = request.path_params["path"]
    repository_path = context.home.repo_path(name)
    if "receive-pack" in path or request.query_params.get("service") == "git-receive-pack":
        return Response("pvegit repositories are read-only\n", status_code=403)
    smart = path == "git-upload-pack" or (
        path == "info/refs" and request.query_params.get("service") == "git-upload-pack"
    )
    if smart and _BACKEND and repository_path.is_dir() and "/" not in name and ".." not in name:
        return await _http_backend(request, context.home.repos_dir, f"/{name}.git/{path}")
    if request.method != "GET":
        return Response("not found\n", status_code=404)
    if not _ALLOWED.match(path) or not repository_path.is_dir() or ".." in name or "/" in name:
        return Response("not found\n", status_code=404)
    if path in ("info/refs", "objects/info/packs"):

        def generate() -> bytes:
            with HostRepository(repository_path) as repository:
                return repository.info_refs() if path == "info/refs" else repository.info_packs()

        return Response(await run_in_threadpool(generate), media_type="text/plain")
    file = repository_path / path
    if not file.is_file():
        return Response("not found\n", status_code=404)
    return FileResponse(file, media_type="application/octet-stream")


async def _http_backend(request: Request, root: Path, path_info: str) -> Response:
    """Run ``git http-backend`` (CGI) for an upload-pack request and stream its answer."""
    body = await request.body()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path_info,
        "QUERY_STRING": request.url.query,
        "REQUEST_METHOD": request.method,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),
    }
    if request.headers.get("content-encoding"):
        environment["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    process = await asyncio.create_subprocess_exec(
        str(_BACKEND),
        "-c",
        "http.receivepack=false",
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=environment,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(body)
    await process.stdin.drain()
    process.stdin.close()
    status, headers = 200, {}
    while line := (await process.stdout.readline()).decode("latin-1").rstrip("\r\n"):
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[key.strip()] = value.strip()
    media_type = headers.pop("Content-Type", "application/octet-stream")
    stdout = process.stdout

    async def stream() -> AsyncIterator[bytes]:
        while chunk := await stdout.read(1 << 16):
            yield chunk
        await process.wait()

    return StreamingResponse(stream(), status_code=status, headers=headers, media_type=media_type)


git_file.guard = "git"  # type: ignore[attr-defined]
