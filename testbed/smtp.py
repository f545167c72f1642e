"""A minimal SMTP receiver on a free loopback port (plain SMTP, no TLS), for the e-mail tests."""

from __future__ import annotations

import socketserver
import threading


class SmtpReceiver:
    """Accepts mail and keeps each message's envelope and data."""

    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []
        self._condition = threading.Condition()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write(line.encode() + b"\r\n")

                say("220 test ESMTP")
                sender, recipients = "", []
                while line := self.rfile.readline().decode().rstrip("\r\n"):
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        say("250 test")
                    elif verb == "MAIL":
                        sender = line.split(":", 1)[1].strip(" <>")
                        say("250 ok")
                    elif verb == "RCPT":
                        recipients.append(line.split(":", 1)[1].strip(" <>"))
                        say("250 ok")
                    elif verb == "DATA":
                        say("354 go on")
                        data = []
                        while (chunk := self.rfile.readline().decode()) not in (".\r\n", ""):
                            data.append(chunk)
                        with receiver._condition:
                            receiver.messages.append(
                                {"from": sender, "to": recipients, "data": "".join(data)}
                            )
                            receiver._condition.notify_all()
                        say("250 queued")
                    elif verb == "QUIT":
                        say("221 bye")
                        return
                    else:
                        say("250 ok")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def wait_for_messages(self, count: int, timeout: float = 30) -> list[dict[str, object]]:
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} messages, got {self.messages}")
            return list(self.messages)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
