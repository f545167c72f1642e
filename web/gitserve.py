"""Read-only git over HTTP: ``git clone http://user:password@server/git/pve1.git``.

The "dumb" HTTP protocol: git fetches HEAD, info/refs, the pack list and the
packs themselves as plain files. info/refs and objects/info/packs are made on
the fly, so nothing is written into the repositories. Credentials are HTTP
basic: a web user's name and password, or any name with an API token as the
password. Only GET and HEAD exist here: a push has nowhere to go (405).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

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


git_file.guard = "git"  # type: ignore[attr-defined]
