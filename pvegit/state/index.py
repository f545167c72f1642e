"""The commit index: each host's commits and the paths they changed, in SQLite.

Derived from git and rebuildable from it at any time (``pvegit reindex``):
git stays the source of truth. It makes a host's timeline a paged query and
a file's history an indexed lookup, where a dulwich path walk over 10,000
commits takes 10-17 s. Its two tables live in state.db, created by
``CommitIndexTables`` (a mixin of ``Store``); this module alone reads and
writes them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pvegit.git.model import ChangeKind
from pvegit.git.repo import Commit, HostRepository
from pvegit.layout import METADATA_PATH
from pvegit.node.tarstream import escape_undecodable
from pvegit.state.db import Database


class CommitIndexTables(Database):
    """The index's tables in state.db; the functions below take a store that has them."""

    SCHEMA = """
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
"""


@dataclass(frozen=True)
class IndexedCommit:
    """One commit as the timeline shows it."""

    commit_id: str
    parent_id: str | None
    position: int  # 1 for the first snapshot, counting up
    time: int
    subject: str
    trigger: str | None
    actor: str | None
    files_changed: int

    @property
    def short_id(self) -> str:
        return self.commit_id[:10]


@dataclass(frozen=True)
class PathChange:
    """One commit that changed a path."""

    commit: IndexedCommit
    change: ChangeKind


def sync_index(store: CommitIndexTables, repository: HostRepository, host: str) -> int:
    """Index the commits of ``host`` that are not indexed yet; return how many were added.

    Walks first parents back from main to the newest indexed commit. If main
    no longer descends from the index (the repository was replaced), the
    host's index is rebuilt from scratch.
    """
    head = repository.head()
    known = _newest(store, host)
    if head is None:
        if known is not None:
            _clear(store, host)
        return 0
    if known is not None and known.commit_id == head:
        return 0
    pending: list[Commit] = []
    cursor: str | None = head
    while cursor is not None:
        if known is not None and cursor == known.commit_id:
            break
        commit = repository.commit(cursor)
        pending.append(commit)
        cursor = commit.parents[0] if commit.parents else None
    else:
        if known is not None:  # walked to the root without meeting the index
            _clear(store, host)
            known = None
    position = known.position if known is not None else 0
    rows: list[tuple[object, ...]] = []
    paths: list[tuple[object, ...]] = []
    for commit in reversed(pending):
        position += 1
        parent = commit.parents[0] if commit.parents else None
        changes = repository.changes(parent, commit.commit_id)
        trailers = commit.trailers()
        rows.append(
            (
                host,
                commit.commit_id,
                parent,
                position,
                commit.time,
                commit.subject,
                trailers.get("Trigger"),
                trailers.get("Triggered-By"),
                sum(1 for change in changes if change.path != METADATA_PATH),
            )
        )
        paths.extend(
            (
                host,
                escape_undecodable(change.path),
                position,
                commit.commit_id,
                change.change.value,  # stored as the word: "added", "modified", "deleted"
            )
            for change in changes
        )
    if not rows:
        return 0
    with store.transaction() as connection:
        # Another thread (a page view, a run) may have indexed some of these meanwhile:
        # the same commits at the same positions, so skip those.
        present = {
            str(row[0])
            for row in connection.execute(
                "SELECT commit_id FROM commit_index WHERE host=? AND position>=?",
                (host, rows[0][3]),
            )
        }
        if present:
            rows = [row for row in rows if row[1] not in present]
            paths = [path for path in paths if path[3] not in present]
        connection.executemany("INSERT INTO commit_index VALUES (?,?,?,?,?,?,?,?,?)", rows)
        connection.executemany("INSERT INTO path_index VALUES (?,?,?,?,?)", paths)
    return len(rows)


def rebuild_index(store: CommitIndexTables, repository: HostRepository, host: str) -> int:
    """Drop and rebuild one host's index; return the number of commits indexed."""
    _clear(store, host)
    return sync_index(store, repository, host)


def commit_count(store: CommitIndexTables, host: str) -> int:
    """How many commits of ``host`` are indexed."""
    rows = store.query("SELECT COUNT(*) AS n FROM commit_index WHERE host=?", (host,))
    return int(rows[0]["n"])


def timeline(
    store: CommitIndexTables, host: str, *, limit: int = 30, before: int | None = None
) -> list[IndexedCommit]:
    """Newest commits first; ``before`` is a position to page back from."""
    if before is None:
        rows = store.query(
            "SELECT * FROM commit_index WHERE host=? ORDER BY position DESC LIMIT ?",
            (host, limit),
        )
    else:
        rows = store.query(
            "SELECT * FROM commit_index WHERE host=? AND position<? ORDER BY position DESC LIMIT ?",
            (host, before, limit),
        )
    return [_to_commit(row) for row in rows]


def recent_changes(store: CommitIndexTables, limit: int = 10) -> list[tuple[str, IndexedCommit]]:
    """The newest commits across all hosts, as (host, commit)."""
    rows = store.query(
        "SELECT * FROM commit_index WHERE position > 1 ORDER BY time DESC, position DESC LIMIT ?",
        (limit,),
    )
    return [(str(row["host"]), _to_commit(row)) for row in rows]


def last_change(store: CommitIndexTables) -> dict[str, IndexedCommit]:
    """The newest commit of every host."""
    rows = store.query(
        "SELECT c.* FROM commit_index c JOIN (SELECT host, MAX(position) AS p FROM commit_index"
        " GROUP BY host) m ON c.host = m.host AND c.position = m.p"
    )
    return {str(row["host"]): _to_commit(row) for row in rows}


def find_commit(store: CommitIndexTables, host: str, commit_id: str) -> IndexedCommit | None:
    """``host``'s indexed commit ``commit_id``, or None if the index lacks it."""
    rows = store.query("SELECT * FROM commit_index WHERE host=? AND commit_id=?", (host, commit_id))
    return _to_commit(rows[0]) if rows else None


def path_history(
    store: CommitIndexTables, host: str, path: str, *, limit: int = 100
) -> list[PathChange]:
    """Commits that changed ``path`` (or anything below it), newest first."""
    key = escape_undecodable(path)  # as the index holds paths
    rows = store.query(
        "SELECT c.*, p.change AS path_change FROM path_index p JOIN commit_index c"
        " ON c.host = p.host AND c.commit_id = p.commit_id"
        " WHERE p.host=? AND (p.path=? OR (p.path > ? AND p.path < ?))"
        " ORDER BY p.position DESC LIMIT ?",
        (host, key, key + "/", key + "0", limit),
    )
    seen: set[str] = set()
    out = []
    for row in rows:
        if row["commit_id"] in seen:
            continue
        seen.add(row["commit_id"])
        out.append(PathChange(_to_commit(row), ChangeKind(row["path_change"])))
    return out


def _newest(store: CommitIndexTables, host: str) -> IndexedCommit | None:
    rows = store.query(
        "SELECT * FROM commit_index WHERE host=? ORDER BY position DESC LIMIT 1", (host,)
    )
    return _to_commit(rows[0]) if rows else None


def _clear(store: CommitIndexTables, host: str) -> None:
    with store.transaction() as connection:
        connection.execute("DELETE FROM commit_index WHERE host=?", (host,))
        connection.execute("DELETE FROM path_index WHERE host=?", (host,))


def _to_commit(row: sqlite3.Row) -> IndexedCommit:
    return IndexedCommit(
        commit_id=str(row["commit_id"]),
        parent_id=row["parent_id"],
        position=int(row["position"]),
        time=int(row["time"]),
        subject=str(row["subject"]),
        trigger=row["trigger"],
        actor=row["actor"],
        files_changed=int(row["files_changed"]),
    )
