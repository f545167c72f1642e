"""A webhook receiver on a free loopback port, for the notification tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Collects POSTed bodies; ``wait_for`` blocks until a condition holds (no sleeps)."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = status
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                with receiver._condition:
                    receiver.bodies.append(body)
                    receiver.headers.append(dict(self.headers))
                    receiver._condition.notify_all()
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *arguments: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, condition: Any, timeout: float = 60) -> list[dict[str, Any]]:
        with self._condition:
            if not self._condition.wait_for(lambda: condition(self.bodies), timeout=timeout):
                raise AssertionError(f"webhook condition not met; got {self.bodies}")
            return list(self.bodies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
