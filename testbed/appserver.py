"""pvegit as a real process or server, for a test or a benchmark: the CLI in a fresh
process, `pvegit serve` on a free loopback port, the web app under uvicorn."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2

from pvegit.config.home import Home

PVEGIT = (sys.executable, "-m", "pvegit")


def pvegit_process(
    home: Home, *arguments: str, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`pvegit --home HOME ...` in a fresh process, as an admin runs it."""
    return subprocess.run(
        [*PVEGIT, "--home", str(home.root), *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(home: Home, log: Path, *arguments: str) -> tuple[subprocess.Popen[bytes], str]:
    """`pvegit serve` on a free loopback port; returns when it accepts connections."""
    address = f"127.0.0.1:{free_port()}"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [*PVEGIT, "--home", str(home.root), "serve", "--listen", address, *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"pvegit serve exited: {log.read_text()}")
        try:
            httpx2.get(f"http://{address}/login", timeout=5)
            return server, f"http://{address}"
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("pvegit serve did not start listening") from None
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(0.05)


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app``; yield ``127.0.0.1:PORT``.

    The socket listens before the server thread starts, so a client that
    connects at once waits in the backlog: no polling for readiness.
    """
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
