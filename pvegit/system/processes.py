"""Which process runs a run, named by what the kernel never hands out twice.

A pid alone is reused: after a reboot, or in a container where ``pvegit
serve`` is always PID 1, the pid a dead run recorded belongs to a live process
again. The boot id (new at every boot) and the process's start time (clock
ticks after boot, field 22 of ``/proc/PID/stat``) together name one process
for good: a run records them next to its pid.

The threads of one process share its identity, so this process also keeps the
runs it is running (``claim``/``release``, per state database): a run this
process recorded and no longer claims is one whose thread is gone.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys/kernel/random/boot_id"
_STATE_FIELD = 0  # field 3 of /proc/PID/stat, the first after the command name
_START_TIME_FIELD = 19  # field 22
_GONE_STATES = ("Z", "X")  # a zombie or a dead task: it runs nothing any more


@dataclass(frozen=True)
class ProcessIdentity:
    """A process: its pid, the boot it runs in and when it started in that boot."""

    pid: int
    boot_id: str | None  # None where /proc does not tell (not Linux)
    start_time: int | None  # clock ticks after boot

    @property
    def complete(self) -> bool:
        """True when boot id and start time are known: the pid can then not be mistaken."""
        return self.boot_id is not None and self.start_time is not None


def boot_id() -> str | None:
    """This boot's id (``/proc/sys/kernel/random/boot_id``), or None where it is unknown."""
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def identity_of(pid: int) -> ProcessIdentity | None:
    """The identity of the live process ``pid``; None when there is none (or a zombie).

    Raises nothing: where /proc cannot tell (not Linux) the identity has no
    start time and the caller decides with what it has.
    """
    if pid <= 0:
        return None
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return _without_proc(pid)
    # The command name (field 2) is in parentheses and may hold spaces and ')'.
    fields = text.rpartition(")")[2].split()
    if len(fields) <= _START_TIME_FIELD or not fields[_START_TIME_FIELD].isdigit():
        return _without_proc(pid)
    if fields[_STATE_FIELD] in _GONE_STATES:
        return None
    return ProcessIdentity(pid, boot_id(), int(fields[_START_TIME_FIELD]))


def _without_proc(pid: int) -> ProcessIdentity | None:
    """Whether ``pid`` exists, by signal 0, where /proc gave no start time."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    return ProcessIdentity(pid, None, None)


_this: ProcessIdentity | None = None


def this_process() -> ProcessIdentity:
    """This process's identity (computed again after a fork)."""
    global _this
    if _this is None or _this.pid != os.getpid():
        _this = identity_of(os.getpid()) or ProcessIdentity(os.getpid(), None, None)
    return _this


_claimed: set[tuple[str, int]] = set()
_claimed_lock = threading.Lock()


def claim(database: str, run_id: int) -> None:
    """Note that this process runs run ``run_id`` of the state database ``database``."""
    with _claimed_lock:
        _claimed.add((database, run_id))


def release(database: str, run_id: int) -> None:
    """Note that this process no longer runs it (finished, or its thread ended)."""
    with _claimed_lock:
        _claimed.discard((database, run_id))


def claimed(database: str, run_id: int) -> bool:
    """Whether this process still runs run ``run_id`` of ``database``."""
    with _claimed_lock:
        return (database, run_id) in _claimed
