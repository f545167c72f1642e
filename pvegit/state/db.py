"""The state database's core: one SQLite connection, its tables, transactions, patience.

Every table of ``state.db`` lives in a module of its own (hosts.py, runs.py,
users.py, ...) as a mixin built on ``Database``; ``Store`` (store.py) composes
them into the one object the rest of pvegit holds. This module owns what they
share: opening the file, creating each mixin's tables and adding the columns
they gained after the first release, one writer at a time, waiting for another
process that holds the database, and telling a damaged or full disk apart from
a mere error.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pvegit.errors import PvegitError, StateDamaged, StorageError
from pvegit.system.diskspace import disk_space, full_message, is_disk_full

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _is_damage(error: sqlite3.Error) -> bool:
    """SQLite's words for a file that is not (or no longer) a whole database."""
    text = str(error)
    return "malformed" in text or "not a database" in text


def _damaged(error: sqlite3.Error, path: Path) -> StateDamaged:
    return StateDamaged(
        f"the state database {path} is damaged ({error}): stop pvegit, then run `pvegit "
        "rebuild-state`, which moves it aside (it is never overwritten) and rebuilds the hosts "
        "and their runs from the repositories, or put back a copy of state.db from a backup"
    )


def _disk_is_full(error: sqlite3.Error, path: Path) -> bool:
    """SQLite says 'database or disk is full', or 'disk I/O error' when it cannot
    even create its journal on a disk with (next to) nothing free."""
    if is_disk_full(error):
        return True
    try:
        return "I/O" in str(error) and disk_space(path.parent).free < 1024 * 1024
    except OSError:
        return False


def columns_of(connection: sqlite3.Connection, table: str) -> set[str]:
    """The column names ``table`` has now (for a mixin's ``upgrade_schema``)."""
    return {str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})")}


def where(**equal: Any) -> tuple[str, list[Any]]:
    """A WHERE clause for the given column=value pairs (None: no condition), and its values."""
    parts = [f"{column}=?" for column, value in equal.items() if value is not None]
    values: list[Any] = [value for value in equal.values() if value is not None]
    return ("WHERE " + " AND ".join(parts) if parts else ""), values


class Database:
    """Access to state.db. Safe to share between threads; one writer at a time.

    A table's mixin subclasses this and declares ``SCHEMA`` (``CREATE ... IF
    NOT EXISTS`` statements) and, for columns added after the first release, a
    static ``upgrade_schema(connection)``; both run, once per mixin, when the
    database is opened. Mixins use ``_query`` and ``_transaction``; modules
    built on the store (the commit index) use ``query`` and ``transaction``.
    """

    SCHEMA: ClassVar[str] = ""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 2.0,
        patience: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (or create) state.db with every table of the composed class.

        Another process holding the database (a backup tool, ``sqlite3`` left in
        a transaction, a second pvegit) is waited for: SQLite retries for
        ``busy_timeout`` seconds, then the store logs a warning and tries again,
        up to ``patience`` seconds in all, so a run's record is not lost to a
        lock held for a while. ``clock`` stamps runs and records (tests move it).
        Raises StorageError (disk full), StateDamaged or PvegitError.
        """
        self.path = path
        self.owner_key = os.path.realpath(path)  # the runs this process claims, by database
        self._clock = clock
        self.busy_waits = 0
        self._next_busy_log = 0.0
        self._patience = patience
        self._lock = threading.RLock()
        try:
            fresh = not path.exists()
            self._connection = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            if fresh:
                os.chmod(path, 0o600)
            self._connection.row_factory = sqlite3.Row
            self._connection.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._patiently(lambda: self._connection.execute("PRAGMA journal_mode=WAL"))
            # FULL: each commit syncs the WAL, so a record written (a run's outcome,
            # a host, an audit entry) survives a power cut. NORMAL syncs only at
            # checkpoints and may lose the last transactions; it is kept for
            # progress updates, which are many and worthless after a cut.
            self._synchronous = ""
            self._set_synchronous("FULL")
            self._patiently(self._create_tables)
        except sqlite3.Error as err:
            if _disk_is_full(err, path):
                raise StorageError(full_message(path.parent)) from err
            if _is_damage(err):
                raise _damaged(err, path) from err
            raise PvegitError(f"cannot open the state database {path}: {err}") from err

    def _create_tables(self) -> None:
        """Each mixin's SCHEMA, then each mixin's ``upgrade_schema``, base classes first."""
        layers = [vars(klass) for klass in reversed(type(self).__mro__)]
        self._connection.executescript("".join(layer.get("SCHEMA", "") for layer in layers))
        for layer in layers:
            upgrade = layer.get("upgrade_schema")
            if upgrade is not None:
                upgrade(self._connection)

    def _set_synchronous(self, level: str) -> None:
        """Outside a transaction only (SQLite refuses the change inside one)."""
        if level != self._synchronous:
            self._connection.execute(f"PRAGMA synchronous={level}")
            self._synchronous = level

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        self._connection.close()

    def now(self) -> float:
        """The store's clock: what stamps runs and deadlines (tests move it)."""
        return self._clock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT) for modules built on the store."""
        with self._transaction() as connection:
            yield connection

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Read rows (for modules built on the store, e.g. the commit index)."""
        return self._query(sql, parameters)

    def quick_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``: ``["ok"]`` for a sound file, else its findings."""
        return [str(row[0]) for row in self._query("PRAGMA quick_check")]

    def _error(self, err: sqlite3.Error) -> PvegitError:
        if _disk_is_full(err, self.path):
            return StorageError(full_message(self.path.parent))
        if _is_damage(err):
            return _damaged(err, self.path)
        return PvegitError(f"state database {self.path}: {err}")

    def _waited(self, err: sqlite3.OperationalError, deadline: float) -> None:
        """After a try that found the database locked: raise if that is not it, or
        patience ran out; else count it (logged once every 30 s) and let the caller retry."""
        if ("locked" not in str(err) and "busy" not in str(err)) or time.monotonic() > deadline:
            raise err
        self.busy_waits += 1
        if time.monotonic() >= self._next_busy_log:
            self._next_busy_log = time.monotonic() + 30
            _log.warning(
                "state database %s is locked by another process; still waiting"
                " (close the other program's transaction to let pvegit go on)",
                self.path,
            )

    def _patiently(self, operation: Callable[[], _T]) -> _T:
        """Run ``operation`` under the store's lock. While another process holds the
        database, the lock is let go between tries (each try waits ``busy_timeout``
        in SQLite), so this process' other threads are not held up meanwhile."""
        deadline = time.monotonic() + self._patience
        while True:
            with self._lock:
                try:
                    return operation()
                except sqlite3.OperationalError as err:
                    failure = err
            self._waited(failure, deadline)

    def _begin(self, durable: bool = True) -> None:
        """BEGIN IMMEDIATE, patiently; returns holding the store's lock."""
        deadline = time.monotonic() + self._patience
        while True:
            self._lock.acquire()
            try:
                self._set_synchronous("FULL" if durable else "NORMAL")
                self._connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as err:
                self._lock.release()
                failure = err
            except BaseException:
                self._lock.release()
                raise
            self._waited(failure, deadline)

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """``durable=False``: may be lost to a power cut (progress, last-used stamps)."""
        try:
            self._begin(durable)
        except sqlite3.Error as err:
            raise self._error(err) from err
        try:
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
        except sqlite3.Error as err:
            raise self._error(err) from err
        finally:
            self._lock.release()

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._patiently(lambda: self._connection.execute(sql, parameters).fetchall())
        except sqlite3.Error as err:
            raise self._error(err) from err
