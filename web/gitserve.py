"""Read-only git over HTTP: ``git clone http://user:password@server/git/pve1.git``.

With git installed on the pvegit machine, the smart protocol through
``git http-backend`` (upload-pack only: one pack, with deltas, made for the
clone). Without it, the "dumb" protocol: git fetches HEAD, info/refs, the pack
list and the packs as plain files; info/refs and objects/info/packs are made
on the fly, so nothing is written into the repositories. Credentials are HTTP
basic: a web user's name and password, or any name with an API token as the
password; either needs the admin role (a clone carries every file the host
collects, secrets included). Pushes are refused (receive-pack is never offered).

Wrong credentials are throttled by the login form's limiter (per user name and
per client address) and audited; every request that reads a repository is
audited, a clone or fetch once (web/fetchaudit.py says when a request makes an
entry). A request body is streamed to git with a cap.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import shutil
import signal
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from pvegit.config.roles import ADMIN, allows
from pvegit.git.repo import HostRepository
from pvegit.state.credentials import hash_token, verify_password
from pvegit.state.store import User
from web.context import Context, context_of
from web.security import claimed_host, claimed_user

_ALLOWED = re.compile(
    r"^(HEAD|info/refs|objects/info/packs|objects/pack/pack-[0-9a-f]{40}\.(pack|idx)"
    r"|objects/[0-9a-f]{2}/[0-9a-f]{38})$"
)
# An upload-pack request is the client's wants and haves: small for one branch.
# git http-backend's own buffer for it is 10 MB by default; the same cap here.
MAX_REQUEST_BYTES = 10 * 1024 * 1024


class _VerifiedPasswords:
    """Spares the password hash (~0.1 s of scrypt) on each request of one clone.

    Remembers, for a while, that an Authorization header's password matched a
    user's stored hash. The caller still reads the user from the database on
    every request and passes the account found there: a removed user, a
    changed password or an account made again under the same name (its
    incarnation is new) no longer matches. Headers are kept only as HMACs
    under a key that lives in this process.
    """

    def __init__(self, capacity: int = 256, seconds: float = 300.0) -> None:
        self._key = secrets.token_bytes(32)
        self._capacity = capacity
        self._seconds = seconds
        self._entries: collections.OrderedDict[str, tuple[str, float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, header: str) -> str:
        return hmac.new(self._key, header.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _account(user: User) -> str:
        return f"{user.incarnation}:{user.password_hash}"

    def matches(self, header: str, user: User) -> bool:
        """Whether ``header`` was seen to match ``user`` as it is now (its account and hash)."""
        digest = self._digest(header)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return False
            remembered, until = entry
            if until < time.monotonic() or not hmac.compare_digest(remembered, self._account(user)):
                del self._entries[digest]
                return False
            return True

    def remember(self, header: str, user: User) -> None:
        """Note that ``header``'s password matched ``user``'s stored hash."""
        digest = self._digest(header)
        with self._lock:
            self._entries[digest] = (self._account(user), time.monotonic() + self._seconds)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


_verified = _VerifiedPasswords()


@dataclass(frozen=True)
class _Admitted:
    who: str  # "alice" or "token:ci", for the audit log
    address: str


def _challenge(message: str) -> Response:
    return Response(message, status_code=401, headers={"WWW-Authenticate": 'Basic realm="pvegit"'})


def _admit(context: Context, request: Request, host: str) -> _Admitted | Response:
    """Check the basic credentials: a web user's password or an API token, admin role.

    Runs in a worker thread (SQLite, scrypt). Wrong credentials count against the
    login throttle and are audited; so is a role too low for a clone.
    """
    header = request.headers.get("authorization", "")
    address = request.client.host if request.client else "unknown"
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":  # git asks without credentials first: not a failure
        return _challenge("credentials required (a pvegit admin, or an API token as password)\n")
    try:
        name, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        name, password = "", None
    keys = (f"user:{name}", f"address:{address}")
    wait = context.throttle.wait_seconds(*keys)
    if wait > 0:
        return Response(
            f"too many failed attempts; try again in {wait:.0f} s\n",
            status_code=429,
            headers={"Retry-After": str(int(wait) + 1)},
        )
    store = context.store
    who, role = None, None
    if password is not None:
        token = store.active_token(hash_token(password))
        if token is not None:
            who, role = f"token:{token.name}", token.role
        else:
            user = store.user(name)
            stored = user.password_hash if user else None
            if user is not None and stored is not None and _verified.matches(header, user):
                who, role = user.name, user.role
            elif verify_password(password, stored) and user is not None:
                _verified.remember(header, user)
                who, role = user.name, user.role
            if who is not None:
                # Only the user's own password clears the user's failures: a token
                # sent with someone else's name must not (it would let its holder
                # reset an admin's count between guesses).
                context.throttle.succeeded(f"user:{name}")
    if who is None:
        context.throttle.failed(*keys)
        store.audit(claimed_user(name), "git login failed", claimed_host(host), address=address)
        return _challenge("wrong user name, password or token\n")
    if not allows(role, ADMIN):
        store.audit(who, "git access refused", claimed_host(host), role=role, address=address)
        return Response(
            f"cloning needs the admin role and {who} is a {role}: a clone carries every "
            "file, secrets included\n",
            status_code=403,
        )
    return _Admitted(who, address)


_BACKEND = shutil.which("git")


async def git_file(request: Request) -> Response:
    context = context_of(request)
    name = request.path_params["host"]
    path = request.path_params["path"]
    admitted = await run_in_threadpool(_admit, context, request, name)
    if isinstance(admitted, Response):
        return admitted
    repository_path = context.home.repo_path(name)
    if "receive-pack" in path or request.query_params.get("service") == "git-receive-pack":
        return Response("pvegit repositories are read-only\n", status_code=403)
    plain = "/" not in name and ".." not in name and repository_path.is_dir()
    smart = path == "git-upload-pack" or (
        path == "info/refs" and request.query_params.get("service") == "git-upload-pack"
    )
    backend = smart and _BACKEND is not None and plain
    dumb = plain and request.method == "GET" and _ALLOWED.match(path) is not None
    if backend or dumb:
        # Audited before a byte of the repository goes out (web/fetchaudit.py).
        await _audit_read(context, admitted, name, path, "smart" if backend else "dumb")
    if backend:
        return await _http_backend(request, context.home.repos_dir, f"/{name}.git/{path}")
    if not dumb:
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


async def _audit_read(
    context: Context, admitted: _Admitted, host: str, path: str, protocol: str
) -> None:
    """The "git fetch" entry for a request that reads ``host``'s repository, when due."""
    key = (admitted.who, host, admitted.address)
    now = context.clock()
    if not context.fetch_audit.due(key, now, discovery=path == "info/refs"):
        return
    await run_in_threadpool(
        context.store.audit,
        admitted.who,
        "git fetch",
        host,
        protocol=protocol,
        request=path,
        address=admitted.address,
    )
    context.fetch_audit.recorded(key, now)


def _too_large() -> Response:
    return Response(
        f"the request is larger than {MAX_REQUEST_BYTES // (1024 * 1024)} MiB; "
        "a clone or fetch of a pvegit repository never needs that much\n",
        status_code=413,
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End git and its children (http-backend runs upload-pack): the whole process group.

    Killing only the first process would leave its children holding the pipes,
    and asyncio's wait() returns only once every pipe is closed.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    await process.wait()


async def _http_backend(request: Request, root: Path, path_info: str) -> Response:
    """Run ``git http-backend`` (CGI) for an upload-pack request and stream its answer.

    The request body goes to git as it arrives, never whole in memory here, and
    at most MAX_REQUEST_BYTES of it (413 beyond). git is not told the length:
    it then reads the request to its end before upload-pack answers (so neither
    side waits on the other), within its own buffer of the same size.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
        return _too_large()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_HTTP_MAX_REQUEST_BUFFER": str(MAX_REQUEST_BYTES),
        "PATH_INFO": path_info,
        "QUERY_STRING": request.url.query,
        "REQUEST_METHOD": request.method,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
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
        start_new_session=True,  # its own process group, so _stop ends its children too
    )
    assert process.stdin is not None and process.stdout is not None
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > MAX_REQUEST_BYTES:
                await _stop(process)
                return _too_large()
            try:
                process.stdin.write(chunk)
                await process.stdin.drain()
            except ConnectionError:  # git stopped reading: its answer says why
                break
    except ClientDisconnect:
        await _stop(process)
        return Response("the request broke off\n", status_code=400)
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
        try:
            while chunk := await stdout.read(1 << 16):
                yield chunk
        finally:  # also when the client went away in the middle
            await _stop(process)

    return StreamingResponse(stream(), status_code=status, headers=headers, media_type=media_type)


git_file.guard = "git"  # type: ignore[attr-defined]
git_file.role = ADMIN  # type: ignore[attr-defined]
