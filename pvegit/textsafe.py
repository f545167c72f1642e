"""Text from a node, made safe to show: control characters as visible escapes.

A node's stderr, file names, owner names, command output and file contents
can hold terminal control sequences (``ESC ] 0 ; title BEL`` sets a
terminal's title, ``ESC [ 2 J`` clears it, a carriage return overwrites a
line). ``printable`` is the one function that turns them into visible
``\\xNN`` text, used on every way out: the terminal (``EscapingStream`` around
the CLI's stdout and stderr), log lines (``EscapingFormatter``), run records
and commit messages (actions/snapshot.py), web pages (the template's ``finalize``)
and notifications (``notify.Event``).
"""

from __future__ import annotations

import logging
import re
from typing import IO, Any

# C0 controls, DEL and C1 controls (U+0080-U+009F: a terminal may take U+009B for
# CSI), and the surrogates that stand for bytes that are not UTF-8.
_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\udc80-\udcff]")
_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\udc80-\udcff]")  # tab and newline kept


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    code = ord(character)
    if code >= 0xDC80:  # a byte that is not UTF-8, held as a surrogate escape
        return f"\\x{code - 0xDC00:02x}"
    return "".join(f"\\x{byte:02x}" for byte in character.encode())


def printable(text: str, *, lines: bool = False) -> str:
    """``text`` with every control character written as ``\\xNN`` (a C1 character as
    its two UTF-8 bytes), and every byte that is not UTF-8 (held as a surrogate
    escape) as ``\\xNN``: nothing in it can drive a terminal.

    One line (a name, a message, a log line, a trailer) unless ``lines``, which
    keeps newlines and tabs (a commit message, a diff, a file shown whole).
    Backslashes are left alone, so it can be applied twice.
    """
    return (_LINES if lines else _ONE_LINE).sub(_escape, text)


class EscapingStream:
    """A text stream (the CLI's stdout or stderr) that writes everything ``printable``.

    Anything else is the wrapped stream's. Its ``buffer`` (raw bytes, e.g. a
    file's content for a pipe) is escaped as well when the stream is a
    terminal. ``unwrapped`` is the stream itself, for pvegit's own control
    sequences (the progress line).
    """

    def __init__(self, stream: IO[str]) -> None:
        self.unwrapped = stream

    def write(self, text: str) -> int:
        self.unwrapped.write(printable(text, lines=True))
        return len(text)

    @property
    def buffer(self) -> Any:
        raw = self.unwrapped.buffer  # type: ignore[attr-defined]
        return _EscapingBuffer(self.unwrapped) if self.unwrapped.isatty() else raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unwrapped, name)


class _EscapingBuffer:
    """Bytes for a terminal: decoded (bytes that are not UTF-8 kept) and escaped."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(printable(data.decode("utf-8", "surrogateescape"), lines=True))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()


def unwrapped(stream: IO[str]) -> IO[str]:
    """The terminal behind an EscapingStream (or ``stream`` itself): for pvegit's own
    control sequences, which must not be escaped."""
    inner: IO[str] = getattr(stream, "unwrapped", stream)
    return inner


class EscapingFormatter(logging.Formatter):
    """Log lines with every control character escaped: one event, one line.

    The message is one line (a newline from a node cannot forge a second log
    line); a traceback keeps its lines, escaped otherwise.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return printable(super().formatException(ei), lines=True)

    def formatStack(self, stack_info: str) -> str:
        return printable(super().formatStack(stack_info), lines=True)
