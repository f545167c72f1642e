"""The inventory commands on the node, and their output read back within limits.

The node's collector (program.py) runs every command in parallel (each under ``timeout``), keeps at
most one byte over the per-command limit of each output (``head -c``, so a
runaway command fills neither the node's disk nor the connection), then
prints them one after the other, framed by a random boundary::

    <boundary> begin <name> <size>\\n<size bytes><boundary> end <name> <exit status>\\n
    <boundary> over <name>\\n          (printed more than the per-command limit)
    <boundary> missing <name>\\n       (not installed on this node: not an error)

pvegit reads that frame by frame and never holds more than the limits: a
block over the per-command limit is read and thrown away as it comes, and
once the run's total is reached reading stops (the caller closes the
channel). A node that does not follow the framing gets the commands it
garbled counted as failed, never more memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pvegit.config.limits import InventoryLimits
from pvegit.node.inventory import COMMANDS

_CHUNK = 64 * 1024
_LONGEST_LINE = 256  # a frame line: boundary, keyword, name, a number


class Readable(Protocol):
    """What the reader needs of a stream: ``read(size)`` returning b"" at its end."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class InventoryOutput:
    """What one run's inventory gave: normalized outputs and what could not be kept."""

    outputs: dict[str, bytes] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # exited non-zero, or garbled
    over_limit: dict[str, str] = field(default_factory=dict)  # name -> which limit, in words


class _OverTotal(Exception):
    """The run's inventory went over its total limit: stop reading."""


class _Garbled(Exception):
    """The stream does not follow the framing: stop reading."""


class _Frames:
    """Reads a framed stream, counting every byte against the run's total."""

    def __init__(self, stream: Readable, total_bytes: int) -> None:
        self._stream = stream
        self._total = total_bytes
        self._buffer = bytearray()
        self._ended = False
        self.received = 0

    def _fill(self) -> None:
        if self._ended:
            return
        if self.received > self._total:
            raise _OverTotal
        chunk = self._stream.read(min(_CHUNK, self._total - self.received + 1))
        if not chunk:
            self._ended = True
            return
        self.received += len(chunk)
        self._buffer += chunk

    def line(self) -> bytes | None:
        """The next frame line without its newline; None at the end of the stream."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > _LONGEST_LINE:
                raise _Garbled
            self._fill()
            if self._ended:
                if self._buffer:
                    raise _Garbled
                return None
        line, _, rest = bytes(self._buffer).partition(b"\n")
        if len(line) > _LONGEST_LINE:
            raise _Garbled
        self._buffer[:] = rest
        return line

    def take(self, size: int, keep: int) -> bytes | None:
        """The next ``size`` bytes if they are at most ``keep``; longer ones are read and
        thrown away (None)."""
        kept = bytearray() if size <= keep else None
        left = size
        while left:
            if not self._buffer:
                self._fill()
                if self._ended:
                    raise _Garbled
            piece = self._buffer[:left]
            del self._buffer[: len(piece)]
            left -= len(piece)
            if kept is not None:
                kept += piece
        return bytes(kept) if kept is not None else None


_HEADER = re.compile(rb"^(\S+) (begin|over|missing) (\S+)(?: (\d{1,19}))?$")
_END = re.compile(rb"^(\S+) end (\S+) (\d{1,5})$")


def read_inventory(
    stream: Readable, boundary: str, names: Sequence[str], limits: InventoryLimits
) -> InventoryOutput:
    """Read the framed outputs of ``names`` (in that order) from ``stream``.

    Never holds more than ``limits`` allow, whatever the node sends: an output
    over ``limits.command_bytes`` is discarded while read; once
    ``limits.total_bytes`` have arrived reading stops and the commands not
    read yet are reported over the limit. Does not raise for a stream that
    breaks the framing (those commands count as failed); transport errors
    (ConnectError, CollectError) pass through.
    """
    result = InventoryOutput()
    frames = _Frames(stream, limits.total_bytes)
    marker = boundary.encode()
    pending = list(names)
    try:
        while pending:
            name = pending[0]
            line = frames.line()
            if line is None:
                break
            header = _HEADER.match(line)
            if not header or header[1] != marker or header[3] != name.encode():
                raise _Garbled
            kind = header[2]
            if kind == b"missing":
                pending.pop(0)
                continue
            if kind == b"over":
                result.over_limit[name] = _over_command(limits)
                pending.pop(0)
                continue
            if header[4] is None:
                raise _Garbled
            data = frames.take(int(header[4]), limits.command_bytes)
            end = _END.match(frames.line() or b"")
            if not end or end[1] != marker or end[2] != name.encode():
                raise _Garbled
            pending.pop(0)
            if data is None:  # the node announced a size over the limit and sent it anyway
                result.over_limit[name] = _over_command(limits)
            elif end[3] != b"0":
                result.failed.append(name)
            else:
                text = data.decode("utf-8", "replace")
                result.outputs[name] = COMMANDS[name].normalize(text).encode()
    except _OverTotal:
        for name in pending:
            result.over_limit[name] = (
                f"not read: the run's inventory reached {_kib(limits.total_bytes)} "
                "(inventory_total_limit_kb)"
            )
        return result
    except _Garbled:
        pass
    result.failed.extend(pending)
    return result


def _over_command(limits: InventoryLimits) -> str:
    return f"printed more than {_kib(limits.command_bytes)} (inventory_command_limit_kb)"


def _kib(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} bytes"
