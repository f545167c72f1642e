"""The commit index (pvegit/state/index.py) against real repositories in tmp_path.

It is derived from git: synced incrementally, rebuilt when main no longer
descends from it, and it answers the timeline, the newest changes and a
path's history as git would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pvegit.git.repo import FILE_MODE, HostRepository, prepare_tree
from pvegit.state.index import (
    commit_count,
    find_commit,
    last_change,
    path_history,
    rebuild_index,
    recent_changes,
    sync_index,
    timeline,
)
from pvegit.state.store import Store

Files = dict[str, bytes]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[HostRepository]:
    with HostRepository(tmp_path / "pve1.git", create=True) as opened:
        yield opened


def snapshot(
    repository: HostRepository, files: Files, subject: str, *, at: int, actor: str | None = None
) -> str:
    """Commit ``files`` (the whole tree) as a snapshot would, with its trailers."""
    trailers = "Run-Id: 1\nTrigger: cli" + (f"\nTriggered-By: {actor}" if actor else "")
    commit_id = repository.commit_tree(
        prepare_tree({path: (FILE_MODE, data) for path, data in files.items()}),
        message=f"{subject}\n\n{trailers}\n",
        author="pvegit <pvegit@test.invalid>",
        parent=repository.head(),
        timestamp=at,
    )
    assert commit_id is not None
    return commit_id


def history(repository: HostRepository) -> list[str]:
    """Four snapshots of pve1: made, a file changed, a file added, the first removed."""
    steps: list[tuple[Files, str]] = [
        ({"etc/hosts": b"1\n", ".pvegit/metadata": b"m1"}, "first"),
        ({"etc/hosts": b"2\n", ".pvegit/metadata": b"m2"}, "hosts changed"),
        ({"etc/hosts": b"2\n", "etc/pve/a.cfg": b"a", ".pvegit/metadata": b"m3"}, "a added"),
        ({"etc/pve/a.cfg": b"a", ".pvegit/metadata": b"m4"}, "hosts removed"),
    ]
    return [
        snapshot(repository, files, subject, at=1000 + index, actor="alice")
        for index, (files, subject) in enumerate(steps)
    ]


def test_sync_indexes_new_commits_once_and_in_order(
    state: Store, repository: HostRepository
) -> None:
    assert sync_index(state, repository, "pve1") == 0  # nothing committed yet
    commits = history(repository)
    assert sync_index(state, repository, "pve1") == 4
    assert sync_index(state, repository, "pve1") == 0
    assert commit_count(state, "pve1") == 4
    newest = snapshot(repository, {"etc/pve/a.cfg": b"b"}, "a changed", at=2000)
    assert sync_index(state, repository, "pve1") == 1
    indexed = timeline(state, "pve1")
    assert [item.commit_id for item in indexed] == [newest, *reversed(commits)]
    assert [item.position for item in indexed] == [5, 4, 3, 2, 1]
    top = indexed[0]
    assert (top.subject, top.time, top.trigger, top.actor) == ("a changed", 2000, "cli", None)
    assert top.parent_id == commits[-1] and top.short_id == newest[:10]
    # The metadata file is no change a user made (each commit also changes it).
    assert [item.files_changed for item in indexed] == [1, 1, 1, 1, 1]
    assert indexed[1].actor == "alice"


def test_timeline_pages_back_and_finds_commits(state: Store, repository: HostRepository) -> None:
    commits = history(repository)
    sync_index(state, repository, "pve1")
    page = timeline(state, "pve1", limit=2)
    assert [item.commit_id for item in page] == [commits[3], commits[2]]
    older = timeline(state, "pve1", limit=2, before=page[-1].position)
    assert [item.commit_id for item in older] == [commits[1], commits[0]]
    assert timeline(state, "pve1", before=1) == []
    found = find_commit(state, "pve1", commits[1])
    assert found is not None and found.subject == "hosts changed"
    assert find_commit(state, "pve1", "0" * 40) is None and timeline(state, "pve2") == []


def test_path_history_names_each_commit_that_touched_a_path(
    state: Store, repository: HostRepository
) -> None:
    commits = history(repository)
    sync_index(state, repository, "pve1")
    hosts = path_history(state, "pve1", "etc/hosts")
    assert [(item.commit.commit_id, item.change) for item in hosts] == [
        (commits[3], "deleted"),
        (commits[1], "modified"),
        (commits[0], "added"),
    ]
    # A directory: every commit that changed something below it, once each.
    below = path_history(state, "pve1", "etc")
    assert [item.commit.commit_id for item in below] == list(reversed(commits))
    assert [item.commit.commit_id for item in path_history(state, "pve1", "etc/pve")] == [
        commits[2]
    ]
    assert path_history(state, "pve1", "etc/ho") == []  # a prefix is not a parent directory
    assert len(path_history(state, "pve1", "etc", limit=2)) == 2


def test_newest_changes_across_hosts(state: Store, tmp_path: Path) -> None:
    with (
        HostRepository(tmp_path / "pve1.git", create=True) as first,
        HostRepository(tmp_path / "pve2.git", create=True) as second,
    ):
        one = history(first)
        two = [
            snapshot(second, {"etc/hosts": b"x"}, "made", at=500),
            snapshot(second, {"etc/hosts": b"y"}, "changed", at=5000),
        ]
        sync_index(state, first, "pve1")
        sync_index(state, second, "pve2")
    assert {host: item.commit_id for host, item in last_change(state).items()} == {
        "pve1": one[-1],
        "pve2": two[-1],
    }
    # Newest first by time, first snapshots left out (they change nothing).
    assert [(host, item.commit_id) for host, item in recent_changes(state, limit=3)] == [
        ("pve2", two[1]),
        ("pve1", one[3]),
        ("pve1", one[2]),
    ]


def test_a_replaced_repository_is_indexed_afresh(state: Store, tmp_path: Path) -> None:
    with HostRepository(tmp_path / "old.git", create=True) as old:
        history(old)
        sync_index(state, old, "pve1")
    with HostRepository(tmp_path / "new.git", create=True) as new:
        fresh = [
            snapshot(new, {"etc/hosts": b"other"}, "first again", at=3000),
            snapshot(new, {"etc/hosts": b"other 2"}, "second", at=3001),
        ]
        # main no longer descends from what was indexed: the host's index starts over.
        assert sync_index(state, new, "pve1") == 2
        assert [item.commit_id for item in timeline(state, "pve1")] == list(reversed(fresh))
        assert [item.position for item in timeline(state, "pve1")] == [2, 1]
        assert rebuild_index(state, new, "pve1") == 2
        assert commit_count(state, "pve1") == 2
    with HostRepository(tmp_path / "empty.git", create=True) as empty:
        assert sync_index(state, empty, "pve1") == 0
    assert commit_count(state, "pve1") == 0 and path_history(state, "pve1", "etc/hosts") == []
