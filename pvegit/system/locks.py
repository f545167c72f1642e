"""One writer per host: a thread lock plus an ``fcntl.flock`` on a lock file.

The flock covers other processes (``pvegit serve`` and a cron ``pvegit
snapshot`` at the same moment); the thread lock covers threads of one process,
which share flock ownership through separate file descriptors only on some
systems. The kernel drops a flock when its process dies, so a crash never
leaves a host locked.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pvegit.errors import LockTimeout

_thread_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()
_POLL_SECONDS = 0.05


def _thread_lock(path: Path) -> threading.Lock:
    with _registry_lock:
        return _thread_locks.setdefault(str(path), threading.Lock())


@contextmanager
def exclusive(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold the lock at ``path`` for the duration of the block.

    Waits up to ``timeout`` seconds; raises LockTimeout naming ``what`` after that.
    """
    thread_lock = _thread_lock(path)
    if not thread_lock.acquire(timeout=max(timeout, 0)):
        raise LockTimeout(f"{what} is busy in this process (waited {timeout:.0f} s)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as err:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"{what} is locked by another pvegit process (waited "
                            f"{timeout:.0f} s); try again when that run has finished"
                        ) from err
                    time.sleep(_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock
    finally:
        thread_lock.release()


def is_held(path: Path) -> bool:
    """Whether some process (this one included) holds the lock at ``path`` right now.

    Tries a shared, non-blocking flock through a descriptor of its own (flock
    locks belong to an open file, so a holder in this process is seen too) and
    lets go at once; a lock file that does not exist is held by no one. An
    ``exclusive`` that tries at that instant waits its usual poll and goes on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
