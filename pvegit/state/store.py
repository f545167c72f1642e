"""SQLite state in ``$PVEGIT_HOME/state.db``: hosts, runs and audit events.

Git is the source of truth for configuration content; this database holds
what git cannot: how to reach each host, the log of every run (including the
ones that committed nothing or failed) and who did what.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pvegit.config.roles import ADMIN, ROLES, VIEWER, check_role
from pvegit.errors import ConfigError, NotFound, PvegitError, StateDamaged, StorageError
from pvegit.system.diskspace import disk_space, full_message, is_disk_full
from pvegit.system.processes import claim, release, this_process

_log = logging.getLogger(__name__)


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


_T = TypeVar("_T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS hosts (
    name TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 22,
    user TEXT NOT NULL DEFAULT 'root',
    identity TEXT,
    categories TEXT NOT NULL,
    includes TEXT NOT NULL DEFAULT '[]',
    excludes TEXT NOT NULL DEFAULT '[]',
    schedule TEXT,
    host_key_type TEXT,
    host_key TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    trigger TEXT NOT NULL,
    actor TEXT,
    status TEXT NOT NULL,
    stage TEXT,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    finished_at REAL,
    duration REAL,
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    changed_files INTEGER NOT NULL DEFAULT 0,
    commit_id TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    pid INTEGER,
    failure TEXT,
    boot_id TEXT,
    process_start INTEGER,
    deadline REAL
);
CREATE INDEX IF NOT EXISTS runs_by_host ON runs (host, id);
CREATE INDEX IF NOT EXISTS runs_running ON runs (host) WHERE status='running';
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commit_index (
    host TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    parent_id TEXT,
    position INTEGER NOT NULL,
    time INTEGER NOT NULL,
    subject TEXT NOT NULL,
    trigger TEXT,
    actor TEXT,
    files_changed INTEGER NOT NULL,
    PRIMARY KEY (host, commit_id)
);
CREATE INDEX IF NOT EXISTS commit_index_by_position ON commit_index (host, position);
CREATE TABLE IF NOT EXISTS path_index (
    host TEXT NOT NULL,
    path TEXT NOT NULL,
    position INTEGER NOT NULL,
    commit_id TEXT NOT NULL,
    change TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS path_index_by_path ON path_index (host, path, position);
CREATE TABLE IF NOT EXISTS alerts (
    host TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    created_by TEXT,
    revoked_at REAL,
    last_used REAL
);
CREATE TABLE IF NOT EXISTS notify_targets (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS verifications (
    host TEXT PRIMARY KEY,
    at REAL NOT NULL,
    ok INTEGER NOT NULL,
    problems TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    host TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    state TEXT
);
"""

RUN_STATUSES = ("running", "changed", "unchanged", "partial", "failed", "refused")
# An audit entry's state: None for a one-shot entry (complete when written); an
# action written before it acts (a restore) is 'started', then one of the others.
AUDIT_STATES = ("started", "completed", "failed", "refused", "interrupted")
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def validate_host_name(name: str) -> str:
    """Host names become repository names and URL parts: keep them plain."""
    if not _HOST_NAME.match(name) or name.endswith((".git", ".lock")) or ".." in name:
        raise ConfigError(
            f"host name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(at most 63, starting with a letter or digit), e.g. the node's name 'pve1'"
        )
    return name


_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_user_name(name: str) -> str:
    """Web user names appear in URLs and the audit log: keep them plain."""
    if not _USER_NAME.match(name):
        raise ConfigError(
            f"user name {name!r} is not allowed: use letters, digits, '.', '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class Host:
    """How to reach one Proxmox node and what to collect from it."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity: str | None = None
    categories: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    schedule: str | None = None
    host_key_type: str | None = None
    host_key: str | None = None  # base64 of the key blob, as in known_hosts
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def is_local(self) -> bool:
        return self.address == "local" or self.address.startswith("local:")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "identity": self.identity,
            "categories": list(self.categories),
            "includes": list(self.includes),
            "excludes": list(self.excludes),
            "schedule": self.schedule,
            "host_key_type": self.host_key_type,
            "host_key_pinned": self.host_key is not None,
        }


@dataclass(frozen=True)
class Run:
    """One snapshot attempt, whatever its outcome."""

    id: int
    host: str
    trigger: str
    actor: str | None
    status: str
    stage: str | None
    progress_done: int
    progress_total: int
    started_at: float
    finished_at: float | None
    duration: float | None
    files: int
    bytes: int
    changed_files: int
    commit_id: str | None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    error: str | None = None
    pid: int | None = None
    failure: str | None = None  # "transient", "permanent" or "overdue" for failed/refused runs
    boot_id: str | None = None  # with process_start: the process running it (processes.py)
    process_start: int | None = None
    deadline: float | None = None  # past this, a run still 'running' counts as failed

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "trigger": self.trigger,
            "actor": self.actor,
            "status": self.status,
            "stage": self.stage,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "files": self.files,
            "bytes": self.bytes,
            "changed_files": self.changed_files,
            "commit": self.commit_id,
            "warnings": list(self.warnings),
            "error": self.error,
            "failure": self.failure,
        }


@dataclass(frozen=True)
class User:
    """A web user: its role, and what its session cookies must carry.

    ``incarnation`` is random, made with the account and never changed: a
    cookie of a removed user does not fit an account made later under the same
    name. ``sessions_epoch`` moves on to end the account's sessions.
    """

    name: str
    role: str
    sessions_epoch: int
    password_hash: str
    created_at: float
    incarnation: str


@dataclass(frozen=True)
class Token:
    """An active API token: its name (``token:NAME`` in the audit log) and role."""

    name: str
    role: str


class Store:
    """Access to state.db. Safe to share between threads; one writer at a time."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 2.0,
        patience: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (or create) state.db.

        Another process holding the database (a backup tool, ``sqlite3`` left in
        a transaction, a second pvegit) is waited for: SQLite retries for
        ``busy_timeout`` seconds, then the store logs a warning and tries again,
        up to ``patience`` seconds in all, so a run's record is not lost to a
        lock held for a while. ``clock`` stamps runs and records (tests move it).
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
            self._patiently(lambda: self._connection.executescript(SCHEMA))
            self._patiently(self._migrate)
        except sqlite3.Error as err:
            if _disk_is_full(err, path):
                raise StorageError(full_message(path.parent)) from err
            if _is_damage(err):
                raise _damaged(err, path) from err
            raise PvegitError(f"cannot open the state database {path}: {err}") from err

    def _set_synchronous(self, level: str) -> None:
        """Outside a transaction only (SQLite refuses the change inside one)."""
        if level != self._synchronous:
            self._connection.execute(f"PRAGMA synchronous={level}")
            self._synchronous = level

    def _migrate(self) -> None:
        """Columns added after the first release."""
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(runs)")}
        if "failure" not in columns:
            self._connection.execute("ALTER TABLE runs ADD COLUMN failure TEXT")
        # Who runs a run beyond its pid (processes.py); older rows have NULL
        # there and are judged by their host's lock instead.
        for column, kind in (
            ("boot_id", "TEXT"),
            ("process_start", "INTEGER"),
            ("deadline", "REAL"),
        ):
            if column not in columns:
                self._connection.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
        self._migrate_access()
        self._migrate_audit()

    def _migrate_access(self) -> None:
        """Roles, session epochs and incarnations. Users and tokens made before roles
        existed keep what they could do: every user was an admin, every token could
        also clone."""
        users = {row[1] for row in self._connection.execute("PRAGMA table_info(users)")}
        if "role" not in users:
            self._connection.execute(
                "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'"
            )
        if "sessions_epoch" not in users:
            self._connection.execute(
                "ALTER TABLE users ADD COLUMN sessions_epoch INTEGER NOT NULL DEFAULT 0"
            )
        if "incarnation" not in users:
            self._connection.execute(
                "ALTER TABLE users ADD COLUMN incarnation TEXT NOT NULL DEFAULT ''"
            )
        # Users made before incarnations existed get one each (their sessions
        # end: a cookie without it is refused); also those an interrupted
        # migration left without one.
        unset = self._connection.execute("SELECT name FROM users WHERE incarnation=''")
        for (name,) in unset.fetchall():
            self._connection.execute(
                "UPDATE users SET incarnation=? WHERE name=?", (_new_incarnation(), name)
            )
        tokens = {row[1] for row in self._connection.execute("PRAGMA table_info(tokens)")}
        if "role" not in tokens:
            self._connection.execute(
                "ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'"
            )

    def close(self) -> None:
        self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT) for modules built on the store."""
        with self._transaction() as connection:
            yield connection

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Read rows (for modules built on the store, e.g. the commit index)."""
        return self._query(sql, parameters)

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

    # -- hosts ---------------------------------------------------------------

    def add_host(self, host: Host) -> Host:
        """Insert a new host; raise ConfigError if the name is taken."""
        validate_host_name(host.name)
        now = self._clock()
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM hosts WHERE name=?", (host.name,)).fetchone():
                raise ConfigError(f"host {host.name!r} exists already; use 'pvegit host edit'")
            connection.execute(
                "INSERT INTO hosts (name, address, port, user, identity, categories, includes,"
                " excludes, schedule, host_key_type, host_key, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    host.name,
                    host.address,
                    host.port,
                    host.user,
                    host.identity,
                    json.dumps(list(host.categories)),
                    json.dumps(list(host.includes)),
                    json.dumps(list(host.excludes)),
                    host.schedule,
                    host.host_key_type,
                    host.host_key,
                    now,
                    now,
                ),
            )
        return self.host(host.name)

    def update_host(self, name: str, **changes: Any) -> Host:
        """Change some fields of a host; raise NotFound if it does not exist."""
        allowed = {
            "address",
            "port",
            "user",
            "identity",
            "categories",
            "includes",
            "excludes",
            "schedule",
            "host_key_type",
            "host_key",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ConfigError(f"cannot change {', '.join(sorted(unknown))} of a host")
        columns = []
        values: list[Any] = []
        for key, value in changes.items():
            columns.append(f"{key}=?")
            values.append(
                json.dumps(list(value)) if key in ("categories", "includes", "excludes") else value
            )
        with self._transaction() as connection:
            cursor = connection.execute(
                f"UPDATE hosts SET {', '.join(columns)}, updated_at=? WHERE name=?",
                (*values, self._clock(), name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no host {name!r}; 'pvegit host list' shows the hosts")
        return self.host(name)

    def remove_host(self, name: str) -> None:
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM hosts WHERE name=?", (name,))
            if cursor.rowcount == 0:
                raise NotFound(f"no host {name!r}; 'pvegit host list' shows the hosts")

    def host(self, name: str) -> Host:
        rows = self._query("SELECT * FROM hosts WHERE name=?", (name,))
        if not rows:
            raise NotFound(f"no host {name!r}; 'pvegit host list' shows the hosts")
        return _row_to_host(rows[0])

    def hosts(self) -> list[Host]:
        return [_row_to_host(row) for row in self._query("SELECT * FROM hosts ORDER BY name")]

    # -- runs ----------------------------------------------------------------

    def start_run(self, host: str, trigger: str, actor: str | None = None) -> int:
        """Record a run of ``host`` as 'running' by this process; return its id.

        The record names this process beyond its pid (boot id, start time), and
        this process claims the run until ``finish_run`` or ``release_run``.
        """
        owner = this_process()
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO runs (host, trigger, actor, status, stage, started_at, pid,"
                " boot_id, process_start) VALUES (?,?,?,'running','queued',?,?,?,?)",
                (host, trigger, actor, self._clock(), owner.pid, owner.boot_id, owner.start_time),
            )
            run_id = int(cursor.lastrowid or 0)
            # Claimed before the row is committed: no one sees it unclaimed meanwhile.
            claim(self.owner_key, run_id)
            return run_id

    def release_run(self, run_id: int) -> None:
        """This process no longer runs ``run_id`` (a record still 'running' is then interrupted)."""
        release(self.owner_key, run_id)

    def set_deadline(self, run_id: int, seconds: float) -> None:
        """Past ``seconds`` from now, ``run_id`` counts as failed if it is still 'running'."""
        with self._transaction(durable=False) as connection:
            connection.execute(
                "UPDATE runs SET deadline=? WHERE id=?", (self._clock() + seconds, run_id)
            )

    def now(self) -> float:
        """The store's clock: what stamps runs and deadlines (tests move it)."""
        return self._clock()

    def update_progress(self, run_id: int, stage: str, done: int = 0, total: int = 0) -> None:
        with self._transaction(durable=False) as connection:
            connection.execute(
                "UPDATE runs SET stage=?, progress_done=?, progress_total=? WHERE id=?",
                (stage, done, total, run_id),
            )

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        files: int = 0,
        bytes_total: int = 0,
        changed_files: int = 0,
        commit_id: str | None = None,
        warnings: Sequence[str] = (),
        error: str | None = None,
        failure: str | None = None,
    ) -> Run:
        """Record a run's outcome. ``failure`` is "transient" (worth retrying) or "permanent"."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(status)
        now = self._clock()
        with self._transaction() as connection:
            connection.execute(
                "UPDATE runs SET status=?, stage='done', finished_at=?, duration=?-started_at,"
                " files=?, bytes=?, changed_files=?, commit_id=?, warnings=?, error=?, failure=?"
                " WHERE id=?",
                (
                    status,
                    now,
                    now,
                    files,
                    bytes_total,
                    changed_files,
                    commit_id,
                    json.dumps(list(warnings)),
                    error,
                    failure,
                    run_id,
                ),
            )
        release(self.owner_key, run_id)
        return self.run(run_id)

    def settle_run(
        self,
        run_id: int,
        *,
        error: str | None,
        failure: str | None,
        commit_id: str | None = None,
        warnings: Sequence[str] = (),
    ) -> bool:
        """Record a run nobody runs any more: failed, or ``changed`` with ``commit_id``
        when its commit landed before it stopped. False if it was no longer 'running'.

        Only liveness.py decides that a run is not being run: call it, not this.
        """
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE runs SET status=?, stage='done', finished_at=?, error=?, failure=?,"
                " commit_id=?, warnings=? WHERE id=? AND status='running'",
                (
                    "changed" if commit_id else "failed",
                    self._clock(),
                    error,
                    failure,
                    commit_id,
                    json.dumps(list(warnings)),
                    run_id,
                ),
            )
            return cursor.rowcount > 0

    def run(self, run_id: int) -> Run:
        rows = self._query("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id}")
        return _row_to_run(rows[0])

    def runs(
        self,
        host: str | None = None,
        limit: int = 50,
        status: str | None = None,
        before: int | None = None,
    ) -> list[Run]:
        """Newest first, optionally one host's, one status's, or older than run ``before``."""
        clauses, values = _filters(host=host, status=status)
        if before is not None:
            clauses += (" AND" if clauses else "WHERE") + " id < ?"
            values.append(before)
        rows = self._query(
            f"SELECT * FROM runs {clauses} ORDER BY id DESC LIMIT ?", (*values, limit)
        )
        return [_row_to_run(row) for row in rows]

    def latest_runs(self) -> dict[str, Run]:
        """The newest run of every host."""
        rows = self._query(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY host)"
        )
        return {row["host"]: _row_to_run(row) for row in rows}

    def latest_successes(self) -> dict[str, Run]:
        """The newest successful (changed, unchanged or partial) run of every host."""
        rows = self._query(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE status IN"
            " ('changed', 'unchanged', 'partial') GROUP BY host)"
        )
        return {row["host"]: _row_to_run(row) for row in rows}

    def last_success(self, host: str) -> Run | None:
        """The newest changed, unchanged or partial run of ``host``."""
        rows = self._query(
            "SELECT * FROM runs WHERE host=? AND status IN ('changed', 'unchanged', 'partial')"
            " ORDER BY id DESC LIMIT 1",
            (host,),
        )
        return _row_to_run(rows[0]) if rows else None

    def change_marker(self) -> tuple[Any, ...]:
        """Changes whenever a run starts or ends or a host changes (cheap to ask every second)."""
        rows = self._query(
            "SELECT (SELECT MAX(id) FROM runs), (SELECT MAX(finished_at) FROM runs),"
            " (SELECT COUNT(*) FROM hosts), (SELECT MAX(updated_at) FROM hosts)"
        )
        return tuple(rows[0])

    def recent_runs(self, per_host: int) -> dict[str, list[Run]]:
        """The newest ``per_host`` runs of every host, newest first, in one query."""
        rows = self._query(
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY host ORDER BY id DESC)"
            " AS recent FROM runs) WHERE recent <= ? ORDER BY host, id DESC",
            (per_host,),
        )
        found: dict[str, list[Run]] = {}
        for row in rows:
            found.setdefault(row["host"], []).append(_row_to_run(row))
        return found

    def run_counts(self) -> dict[str, int]:
        """How many runs the log holds, by status."""
        rows = self._query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
        return {str(row["status"]): int(row["n"]) for row in rows}

    def running_runs(self, host: str | None = None) -> list[Run]:
        """The runs recorded as 'running', oldest first (liveness.py says which still are)."""
        clauses, values = _filters(host=host)
        clauses += (" AND" if clauses else "WHERE") + " status='running'"
        rows = self._query(f"SELECT * FROM runs {clauses} ORDER BY id", values)
        return [_row_to_run(row) for row in rows]

    # -- users ---------------------------------------------------------------

    def add_user(self, name: str, password_hash: str, role: str | None = None) -> str:
        """Insert a web user and return its role; raise ConfigError if the name is taken.

        The first user is an admin (someone must be able to manage the rest);
        later ones are viewers unless ``role`` says otherwise.
        """
        validate_user_name(name)
        now = self._clock()
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise ConfigError(f"user {name!r} exists already; use 'pvegit user passwd'")
            first = connection.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
            chosen = check_role(role) if role is not None else (ADMIN if first else VIEWER)
            if first and chosen != ADMIN:
                raise ConfigError(
                    f"the first user must be an admin (someone has to manage the others): "
                    f"add {name!r} without --role, or with --role admin"
                )
            connection.execute(
                "INSERT INTO users (name, password_hash, role, created_at, updated_at,"
                " incarnation) VALUES (?,?,?,?,?,?)",
                (name, password_hash, chosen, now, now, _new_incarnation()),
            )
        return chosen

    def set_password(self, name: str, password_hash: str) -> None:
        """Change a password; every session of the user ends with it."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE users SET password_hash=?, sessions_epoch=sessions_epoch+1, updated_at=?"
                " WHERE name=?",
                (password_hash, self._clock(), name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no user {name!r}; 'pvegit user list' shows the users")

    def set_role(self, name: str, role: str) -> str:
        """Give a user another role; return the previous one.

        A lower role ends the user's sessions at once; the last admin cannot be
        demoted (ConfigError).
        """
        check_role(role)
        with self._transaction() as connection:
            previous = self._user_role(connection, name)
            if previous == ADMIN and role != ADMIN:
                self._keep_an_admin(connection, name, "demote")
            downgrade = ROLES.index(role) < ROLES.index(previous)
            connection.execute(
                "UPDATE users SET role=?, sessions_epoch=sessions_epoch+?, updated_at=?"
                " WHERE name=?",
                (role, 1 if downgrade else 0, self._clock(), name),
            )
        return previous

    def end_sessions(self, name: str) -> None:
        """Log the user out everywhere: every session cookie issued so far stops working."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE users SET sessions_epoch=sessions_epoch+1 WHERE name=?", (name,)
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no user {name!r}; 'pvegit user list' shows the users")

    def remove_user(self, name: str) -> None:
        """Delete a user (its sessions end with it, also if the name is added again: the
        new account has another incarnation); the last admin stays (ConfigError)."""
        with self._transaction() as connection:
            if self._user_role(connection, name) == ADMIN:
                self._keep_an_admin(connection, name, "remove")
            connection.execute("DELETE FROM users WHERE name=?", (name,))

    @staticmethod
    def _user_role(connection: sqlite3.Connection, name: str) -> str:
        row = connection.execute("SELECT role FROM users WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no user {name!r}; 'pvegit user list' shows the users")
        return str(row[0])

    @staticmethod
    def _keep_an_admin(connection: sqlite3.Connection, name: str, what: str) -> None:
        others = connection.execute(
            "SELECT COUNT(*) FROM users WHERE role=? AND name<>?", (ADMIN, name)
        ).fetchone()[0]
        if others == 0:
            raise ConfigError(
                f"cannot {what} {name!r}: it is the last admin. Make another user an admin "
                "first (pvegit user role NAME admin)"
            )

    def password_hash(self, name: str) -> str | None:
        rows = self._query("SELECT password_hash FROM users WHERE name=?", (name,))
        return str(rows[0]["password_hash"]) if rows else None

    def user(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        rows = self._query("SELECT * FROM users WHERE name=?", (name,))
        return _row_to_user(rows[0]) if rows else None

    def users(self) -> list[User]:
        return [_row_to_user(row) for row in self._query("SELECT * FROM users ORDER BY name")]

    # -- alerts and tokens ---------------------------------------------------

    def alert_state(self, host: str) -> str | None:
        """What was last alerted for ``host``: "failing", "stale" or None."""
        rows = self._query("SELECT state FROM alerts WHERE host=?", (host,))
        return str(rows[0]["state"]) if rows else None

    def set_alert_state(self, host: str, state: str | None) -> None:
        with self._transaction() as connection:
            if state is None:
                connection.execute("DELETE FROM alerts WHERE host=?", (host,))
            else:
                connection.execute(
                    "INSERT INTO alerts (host, state, since) VALUES (?,?,?) ON CONFLICT(host)"
                    " DO UPDATE SET state=excluded.state, since=excluded.since",
                    (host, state, self._clock()),
                )

    def add_token(
        self, name: str, token_hash: str, created_by: str | None, role: str = VIEWER
    ) -> None:
        """Store a new API token's hash with its role; ConfigError if the name is taken."""
        check_role(role)
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM tokens WHERE name=?", (name,)).fetchone():
                raise ConfigError(
                    f"a token named {name!r} exists already; revoke it or pick another name"
                )
            connection.execute(
                "INSERT INTO tokens (name, token_hash, created_at, created_by, role)"
                " VALUES (?,?,?,?,?)",
                (name, token_hash, self._clock(), created_by, role),
            )

    def revoke_token(self, name: str) -> None:
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE tokens SET revoked_at=? WHERE name=? AND revoked_at IS NULL",
                (self._clock(), name),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no active token {name!r}; 'pvegit token list' shows them")

    def active_token(self, token_hash: str) -> Token | None:
        """The active token with this hash (and note its use), or None."""
        rows = self._query(
            "SELECT name, role FROM tokens WHERE token_hash=? AND revoked_at IS NULL",
            (token_hash,),
        )
        if not rows:
            return None
        with self._transaction(durable=False) as connection:
            connection.execute(
                "UPDATE tokens SET last_used=? WHERE token_hash=?", (self._clock(), token_hash)
            )
        return Token(str(rows[0]["name"]), str(rows[0]["role"]))

    def tokens(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT name, role, created_at, created_by, revoked_at, last_used FROM tokens"
            " ORDER BY name"
        )
        return [dict(row) for row in rows]

    def add_notify_target(self, name: str, settings: dict[str, Any]) -> None:
        """A notification target made in the web UI (a [[notify]] table, checked by the caller)."""
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM notify_targets WHERE name=?", (name,)).fetchone():
                raise ConfigError(f"a notification target named {name!r} exists already")
            connection.execute(
                "INSERT INTO notify_targets (name, settings, created_at) VALUES (?,?,?)",
                (name, json.dumps(settings), self._clock()),
            )

    def remove_notify_target(self, name: str) -> None:
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM notify_targets WHERE name=?", (name,))
            if cursor.rowcount == 0:
                raise NotFound(f"no notification target {name!r} made in the web UI")

    def notify_targets(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT settings FROM notify_targets ORDER BY name")
        return [json.loads(row["settings"]) for row in rows]

    def record_verification(self, host: str, problems: Sequence[str]) -> None:
        """The outcome of the newest `pvegit verify` of ``host``."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO verifications (host, at, ok, problems) VALUES (?,?,?,?)"
                " ON CONFLICT(host) DO UPDATE SET at=excluded.at, ok=excluded.ok,"
                " problems=excluded.problems",
                (host, self._clock(), 0 if problems else 1, json.dumps(list(problems))),
            )

    def verifications(self) -> dict[str, dict[str, Any]]:
        rows = self._query("SELECT * FROM verifications")
        return {
            str(row["host"]): {
                "at": row["at"],
                "ok": bool(row["ok"]),
                "problems": json.loads(row["problems"]),
            }
            for row in rows
        }

    def prune_runs(self, older_than: float) -> int:
        """Forget finished runs that started before ``older_than`` (the run log's retention)."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM runs WHERE started_at < ? AND status <> 'running'", (older_than,)
            )
            return cursor.rowcount

    # -- audit ---------------------------------------------------------------

    def _migrate_audit(self) -> None:
        """The state column: audit entries written before an action and completed after."""
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(audit)")}
        if "state" not in columns:
            self._connection.execute("ALTER TABLE audit ADD COLUMN state TEXT")

    def audit(self, actor: str, action: str, host: str | None = None, **detail: Any) -> int:
        """Record who did what (synced before it returns); returns the entry's id."""
        return self._insert_audit(actor, action, host, None, detail)

    def start_audit(self, actor: str, action: str, host: str | None = None, **detail: Any) -> int:
        """Record an action before it acts (state 'started', synced); returns the entry's id.

        Finish it with ``update_audit``. An entry left 'started' by a process that
        died is closed with ``interrupt_audits``.
        """
        return self._insert_audit(actor, action, host, "started", detail)

    def _insert_audit(
        self, actor: str, action: str, host: str | None, state: str | None, detail: dict[str, Any]
    ) -> int:
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO audit (at, actor, action, host, detail, state) VALUES (?,?,?,?,?,?)",
                (self._clock(), actor, action, host, json.dumps(detail, sort_keys=True), state),
            )
            return int(cursor.lastrowid or 0)

    def update_audit(self, entry_id: int, state: str | None = None, **detail: Any) -> None:
        """Add ``detail`` to a started entry (synced); ``state`` finishes it.

        Raises NotFound for an unknown entry, ConfigError for an unknown state.
        """
        if state is not None and state not in AUDIT_STATES:
            raise ConfigError(f"unknown audit state {state!r}")
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT detail, state FROM audit WHERE id=?", (entry_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no audit entry {entry_id}")
            merged = {**json.loads(row["detail"]), **detail}
            connection.execute(
                "UPDATE audit SET detail=?, state=? WHERE id=?",
                (json.dumps(merged, sort_keys=True), state or row["state"], entry_id),
            )

    def started_audits(self, action: str) -> list[dict[str, Any]]:
        """Entries of ``action`` still 'started': running now, or left by a process that died."""
        rows = self._query(
            "SELECT * FROM audit WHERE action=? AND state='started' ORDER BY id", (action,)
        )
        return [_row_to_audit(row) for row in rows]

    def interrupt_audits(self, action: str, host: str) -> int:
        """Mark ``host``'s entries of ``action`` still 'started' as interrupted.

        Call only while holding the lock that the action holds while it runs:
        none of them can then be live. Returns how many were marked.
        """
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE audit SET state='interrupted'"
                " WHERE action=? AND host=? AND state='started'",
                (action, host),
            )
            return cursor.rowcount

    def audit_events(
        self, limit: int = 100, host: str | None = None, action: str | None = None
    ) -> list[dict[str, Any]]:
        clauses, values = _filters(host=host, action=action)
        rows = self._query(
            f"SELECT * FROM audit {clauses} ORDER BY id DESC LIMIT ?", (*values, limit)
        )
        return [_row_to_audit(row) for row in rows]


def _filters(**equal: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause for the given column=value pairs (None: no condition)."""
    parts = [f"{column}=?" for column, value in equal.items() if value is not None]
    values: list[Any] = [value for value in equal.values() if value is not None]
    return ("WHERE " + " AND ".join(parts) if parts else ""), values


def _row_to_audit(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"],
        "actor": row["actor"],
        "action": row["action"],
        "host": row["host"],
        "detail": json.loads(row["detail"]),
        "state": row["state"],
    }


def _row_to_host(row: sqlite3.Row) -> Host:
    return Host(
        name=row["name"],
        address=row["address"],
        port=row["port"],
        user=row["user"],
        identity=row["identity"],
        categories=tuple(json.loads(row["categories"])),
        includes=tuple(json.loads(row["includes"])),
        excludes=tuple(json.loads(row["excludes"])),
        schedule=row["schedule"],
        host_key_type=row["host_key_type"],
        host_key=row["host_key"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _row_to_user(row: sqlite3.Row) -> User:
    return User(
        name=row["name"],
        role=row["role"],
        sessions_epoch=row["sessions_epoch"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        incarnation=row["incarnation"],
    )


def _new_incarnation() -> str:
    """A user account's incarnation: 128 random bits, never the same twice."""
    return secrets.token_hex(16)


def _row_to_run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        host=row["host"],
        trigger=row["trigger"],
        actor=row["actor"],
        status=row["status"],
        stage=row["stage"],
        progress_done=row["progress_done"],
        progress_total=row["progress_total"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration=row["duration"],
        files=row["files"],
        bytes=row["bytes"],
        changed_files=row["changed_files"],
        commit_id=row["commit_id"],
        warnings=tuple(json.loads(row["warnings"])),
        error=row["error"],
        pid=row["pid"],
        failure=row["failure"],
        boot_id=row["boot_id"],
        process_start=row["process_start"],
        deadline=row["deadline"],
    )
