"""Unit tests of the git layer's pieces: bare repositories in tmp_path, no nodes.

tests/test_repo.py covers committing, revisions, path logs, pack folding and a
killed writer's debris; test_integrity.py and test_powercut.py the damage
checks and repair. These cover what the split made separately visible: the
tree layout, the change vocabulary, reading, the compare-and-swap of main,
the dumb-HTTP info files and the host settings.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvegit import layout
from pvegit.errors import NotFound, PvegitError
from pvegit.git.model import FILE_MODE, SYMLINK_MODE, ChangeKind, Commit
from pvegit.git.repo import HostRepository, prepare_tree
from pvegit.state.index import path_history, sync_index
from pvegit.state.store import Store

AUTHOR = "t <t@x>"


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[HostRepository]:
    opened = HostRepository(tmp_path / "pve1.git", create=True)
    yield opened
    opened.close()


def commit(
    repository: HostRepository, files: dict[str, bytes], *, parent: str | None = None
) -> str:
    made = repository.commit_tree(
        prepare_tree({path: (FILE_MODE, data) for path, data in files.items()}),
        message="m",
        author=AUTHOR,
        parent=repository.head() if parent is None else parent,
    )
    assert made is not None
    return made


# -- the tree layout -----------------------------------------------------------


def test_the_layout_is_the_one_on_disk() -> None:
    # Users' tools read these paths (docs/repository-layout.md): they never change.
    assert layout.METADATA_PATH == ".pvegit/metadata"
    assert layout.inventory_path("qm-list") == ".pvegit/inventory/qm-list.txt"
    assert layout.RECOVERY_PATH == "RECOVERY.md"


def test_inventory_names_and_pvegit_paths() -> None:
    assert layout.inventory_name(layout.inventory_path("pveversion")) == "pveversion"
    assert layout.inventory_name(layout.METADATA_PATH) is None
    assert layout.inventory_name("etc/pve/.pvegit/inventory/x.txt") is None
    assert layout.is_pvegit_path(layout.METADATA_PATH)
    assert not layout.is_pvegit_path(".pvegit")  # the folder itself holds no file
    assert not layout.is_pvegit_path(".pvegit-restore.abc")
    assert not layout.is_pvegit_path("etc/.pvegit/metadata")


# -- the change vocabulary -----------------------------------------------------


def test_a_change_prints_and_is_stored_as_the_words_of_today() -> None:
    assert [kind.value for kind in ChangeKind] == ["added", "modified", "deleted", "owner/mode"]
    assert f"{ChangeKind.DELETED.value:>8}" == " deleted"
    assert ChangeKind("modified") is ChangeKind.MODIFIED


def test_changes_name_each_kind_and_filter_by_path(repository: HostRepository) -> None:
    first = commit(repository, {"etc/a": b"1", "etc/ab": b"1", "etc/d/x": b"1"})
    second = commit(repository, {"etc/a": b"2", "etc/ab": b"1", "etc/new": b"n"})
    kinds = {change.path: change.change for change in repository.changes(first, second)}
    assert kinds == {
        "etc/a": ChangeKind.MODIFIED,
        "etc/d/x": ChangeKind.DELETED,
        "etc/new": ChangeKind.ADDED,
    }
    # A path takes what is below it, not a sibling that starts with its name.
    assert [change.path for change in repository.changes(first, second, ["etc/a"])] == ["etc/a"]
    assert [change.path for change in repository.changes(first, second, ["etc/d"])] == ["etc/d/x"]
    everything = repository.changes(None, first)
    assert {change.change for change in everything} == {ChangeKind.ADDED}
    added = everything[0]
    assert added.old_id is None and added.old_mode is None and added.new_mode == FILE_MODE


def test_the_commit_index_stores_the_words_and_hands_out_change_kinds(
    tmp_path: Path, repository: HostRepository
) -> None:
    commit(repository, {"etc/a": b"1", "etc/b": b"1"})
    commit(repository, {"etc/a": b"2"})
    store = Store(tmp_path / "state.db")
    try:
        assert sync_index(store, repository, "pve1") == 2
        stored = {str(row["change"]) for row in store.query("SELECT change FROM path_index")}
        assert stored == {"added", "modified", "deleted"}
        assert [item.change for item in path_history(store, "pve1", "etc/a")] == [
            ChangeKind.MODIFIED,
            ChangeKind.ADDED,
        ]
        assert path_history(store, "pve1", "etc/b")[0].change is ChangeKind.DELETED
    finally:
        store.close()


# -- reading -------------------------------------------------------------------


def test_commit_trailers_and_run_id() -> None:
    message = "pve1: 1 file changed\n\n  modified  /etc/a\n\nRun-Id: 42\nTrigger: timer\n"
    commit_value = Commit("a" * 40, (), AUTHOR, 0, message)
    assert commit_value.subject == "pve1: 1 file changed"
    assert commit_value.trailers() == {"Run-Id": "42", "Trigger": "timer"}
    assert commit_value.run_id == 42
    assert Commit("a" * 40, (), AUTHOR, 0, "subject only\nRun-Id: 1").run_id is None


def test_files_directories_and_lookups(repository: HostRepository) -> None:
    name = b"etc/caf\xe9".decode("utf-8", "surrogateescape")  # not UTF-8 on the node
    head = repository.commit_tree(
        prepare_tree(
            {
                "etc/pve/storage.cfg": (FILE_MODE, b"dir: local\n"),
                "etc/link": (SYMLINK_MODE, b"pve/storage.cfg"),
                name: (FILE_MODE, b"x"),
            }
        ),
        message="m",
        author=AUTHOR,
        parent=None,
    )
    assert head is not None
    assert repository.read_file(head, "etc/pve/storage.cfg") == (FILE_MODE, b"dir: local\n")
    assert repository.read_file(head, name) == (FILE_MODE, b"x")
    assert set(repository.file_ids(head)) == {"etc/pve/storage.cfg", "etc/link", name}
    assert repository.file_ids(None) == {}
    assert [entry.name for entry in repository.list_directory(head, "etc")] == [
        "caf\udce9",
        "link",
        "pve",
    ]
    assert repository.lookup(head, "")[0] == "tree"
    assert repository.lookup(head, "etc/link")[1][0] == SYMLINK_MODE
    with pytest.raises(NotFound, match="is a directory"):
        repository.read_file(head, "etc/pve")
    with pytest.raises(NotFound, match="is not in snapshot"):
        repository.read_file(head, "etc/missing")
    with pytest.raises(NotFound, match="is a file, not a directory"):
        repository.list_directory(head, "etc/link")
    with pytest.raises(NotFound, match="is not in snapshot"):
        repository.lookup(head, "etc/link/below")


# -- writing -------------------------------------------------------------------


def test_a_parent_that_is_also_a_file_is_refused() -> None:
    with pytest.raises(PvegitError, match="a parent directory is also a file"):
        prepare_tree({"etc/a": (FILE_MODE, b"1"), "etc/a/b": (FILE_MODE, b"2")})


def test_main_moves_only_from_the_parent_the_writer_saw(repository: HostRepository) -> None:
    first = commit(repository, {"etc/a": b"1"})
    second = commit(repository, {"etc/a": b"2"})
    with pytest.raises(PvegitError, match="main moved while committing"):
        commit(repository, {"etc/a": b"3"}, parent=first)
    assert repository.head() == second
    # A "first" snapshot never lands on a main that exists.
    with pytest.raises(PvegitError, match="main moved while committing"):
        repository.commit_tree(
            prepare_tree({"etc/b": (FILE_MODE, b"1")}), message="m", author=AUTHOR, parent=None
        )
    assert repository.head() == second


def test_packs_are_private_and_fold_into_one(repository: HostRepository) -> None:
    for number in range(3):
        commit(repository, {"etc/a": str(number).encode()})
    pack_dir = repository.path / "objects" / "pack"
    assert len(list(pack_dir.glob("*.pack"))) == 3
    assert all(path.stat().st_mode & 0o777 == 0o400 for path in pack_dir.iterdir())
    # The smaller packs fold (all but the largest, at least two): 3 -> 2 -> 1.
    repository.pack()
    assert len(list(pack_dir.glob("*.pack"))) == 2
    repository.pack()
    assert len(list(pack_dir.glob("*.pack"))) == 1
    assert all(path.stat().st_mode & 0o777 == 0o400 for path in pack_dir.iterdir())
    # Every object main reaches is still there: 3 commits, 3 root trees, 3 etc trees, 3 blobs.
    assert repository.check_objects() == (12, [])
    assert repository.damage(deep=True) == []


# -- dumb-HTTP info, settings ----------------------------------------------------


def test_info_files_match_what_git_would_write(tmp_path: Path, repository: HostRepository) -> None:
    head = commit(repository, {"etc/a": b"1"})
    assert repository.info_refs() == f"{head}\trefs/heads/main\n".encode()
    packs = repository.info_packs().decode().splitlines()
    assert len(packs) == 2 and packs[0].startswith("P pack-") and packs[1] == ""
    # A pack whose index is not written yet is not offered.
    (repository.path / "objects" / "pack" / "pack-unfinished.pack").write_bytes(b"PACK")
    assert repository.info_packs().decode().splitlines() == packs
    # The real git client clones from a copy that holds exactly these files.
    served = tmp_path / "served.git"
    subprocess.run(["cp", "-a", str(repository.path), str(served)], check=True)
    (served / "objects" / "pack" / "pack-unfinished.pack").unlink()
    (served / "info").mkdir(exist_ok=True)
    (served / "info" / "refs").write_bytes(repository.info_refs())
    (served / "objects" / "info").mkdir(exist_ok=True)
    (served / "objects" / "info" / "packs").write_bytes(repository.info_packs())
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", f"file://{served}", str(clone)], check=True, capture_output=True
    )
    assert (clone / "etc" / "a").read_bytes() == b"1"


def test_settings_round_trip_and_write_only_when_they_differ(
    repository: HostRepository,
) -> None:
    assert repository.settings() == {}
    commit(repository, {"etc/a": b"1"})  # settings without a commit would be damage
    assert repository.write_settings({"categories": "network,system"})
    assert not repository.write_settings({"categories": "network,system"})
    repository.close()
    reopened = HostRepository(repository.path)
    try:
        assert reopened.settings() == {"categories": "network,system"}
    finally:
        reopened.close()
