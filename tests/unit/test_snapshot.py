"""Unit tests of a snapshot's pure parts: the tree, carried-over files, the change list,
the mass-deletion guard and the commit message (a bare repository in tmp_path, no node)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pvegit.actions.snapshot import SnapshotOptions, failure_kind
from pvegit.actions.snapshot_changes import (
    MASS_DELETION_FORCED,
    MASS_DELETION_HELD,
    commit_message,
    describe_changes,
    guard_mass_deletion,
    held_deletions,
)
from pvegit.actions.snapshot_tree import carry_over, snapshot_files
from pvegit.errors import CollectError, ConfigError, ConnectError, LockTimeout, RefusedError
from pvegit.git.model import ChangeKind
from pvegit.git.repo import EXECUTABLE_MODE, FILE_MODE, SYMLINK_MODE, HostRepository, prepare_tree
from pvegit.layout import METADATA_PATH, inventory_path
from pvegit.node.collect import Collection
from pvegit.node.metadata import parse_metadata
from pvegit.node.probe import Probe
from pvegit.node.tarstream import Entry
from pvegit.state.store import Run

PROBE = Probe("pve1", 0, True, True, True)


def collection_of(*entries: Entry, inventory: dict[str, bytes] | None = None) -> Collection:
    return Collection(
        probe=PROBE, entries={entry.path: entry for entry in entries}, inventory=inventory or {}
    )


def run(status: str, error: str | None) -> Run:
    return Run(
        1, "pve1", "manual", None, status, None, 0, 0, 0.0, 1.0, 1.0, 0, 0, 0, None, (), error
    )


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[HostRepository]:
    opened = HostRepository(tmp_path / "pve1.git", create=True)
    yield opened
    opened.close()


def commit(repository: HostRepository, collection: Collection) -> str:
    commit_id = repository.commit_tree(
        prepare_tree(snapshot_files(collection)),
        message="test\n",
        author="t <t@x>",
        parent=repository.head(),
    )
    assert commit_id is not None
    return commit_id


# -- the tree ------------------------------------------------------------------


def test_the_tree_holds_files_links_metadata_and_inventory() -> None:
    collection = collection_of(
        Entry("etc", "dir", mode=0o755),
        Entry("etc/hosts", "file", b"127.0.0.1 localhost\n", 0o644),
        Entry("usr/local/bin/run", "file", b"#!/bin/sh\n", 0o750, "root", "staff"),
        Entry("etc/pve/local", "symlink", b"nodes/pve1", 0o777),
        inventory={"qm-list": b"100 vm100\n"},
    )
    files = snapshot_files(collection)
    assert files["etc/hosts"] == (FILE_MODE, b"127.0.0.1 localhost\n")
    assert files["usr/local/bin/run"] == (EXECUTABLE_MODE, b"#!/bin/sh\n")
    assert files["etc/pve/local"] == (SYMLINK_MODE, b"nodes/pve1")
    assert "etc" not in files  # git has no empty directories: the metadata lists them
    assert files[inventory_path("qm-list")] == (FILE_MODE, b"100 vm100\n")
    recorded = parse_metadata(files[METADATA_PATH][1])
    assert recorded["etc"].kind == "dir" and recorded["etc"].mode == 0o755
    run_script = recorded["usr/local/bin/run"]
    assert (run_script.owner, run_script.group, run_script.mode) == ("root", "staff", 0o750)
    # pmxcfs decides owners and modes below /etc/pve: none recorded.
    assert recorded["etc/pve/local"].mode is None


# -- carrying unreadable files over ---------------------------------------------


def test_a_first_snapshot_carries_nothing(repository: HostRepository) -> None:
    collection = collection_of(Entry("etc/hosts", "file", b"x\n"))
    collection.unreadable.append("etc/pve")
    assert carry_over(repository, None, {}, collection) == 0
    assert set(collection.entries) == {"etc/hosts"}


def test_unreadable_paths_are_kept_as_they_were(repository: HostRepository) -> None:
    parent = commit(
        repository,
        collection_of(
            Entry("etc/hosts", "file", b"old hosts\n"),
            Entry("etc/iscsi", "dir", mode=0o755),
            Entry("etc/iscsi/nodes", "dir", mode=0o700),
            Entry("etc/iscsi/nodes/target", "file", b"chap\n", 0o600, "root", "adm"),
            Entry("etc/iscsi/iscsid.conf", "file", b"old\n", 0o600),
            Entry("etc/iscsi/nodesfoo", "file", b"a sibling, not below nodes\n"),
            Entry("etc/pve/priv/token.cfg", "file", b"secret\n", 0o600, "root", "www-data"),
        ),
    )
    # tar could not read etc/iscsi/nodes nor etc/pve/priv; etc/hosts and nodesfoo are gone.
    collection = collection_of(Entry("etc/iscsi/iscsid.conf", "file", b"new\n", 0o600))
    collection.unreadable += ["etc/iscsi/nodes", "etc/pve/priv"]
    carried = carry_over(repository, parent, repository.file_ids(parent), collection)
    assert carried == 2
    kept = collection.entries["etc/iscsi/nodes/target"]
    assert (kept.kind, kept.data, kept.mode, kept.owner, kept.group) == (
        "file",
        b"chap\n",
        0o600,
        "root",
        "adm",
    )
    assert collection.entries["etc/iscsi/nodes"].kind == "dir"  # its directory too
    # Below /etc/pve pmxcfs decides owners and modes: the content is what is kept.
    assert collection.entries["etc/pve/priv/token.cfg"].data == b"secret\n"
    assert collection.entries["etc/iscsi/iscsid.conf"].data == b"new\n"  # read: not replaced
    assert "etc/hosts" not in collection.entries  # readable and gone: a deletion
    assert "etc/iscsi/nodesfoo" not in collection.entries  # a name prefix is not a parent


def test_failed_and_over_limit_commands_keep_their_output(repository: HostRepository) -> None:
    parent = commit(
        repository,
        collection_of(inventory={"qm-list": b"100\n", "lsblk": b"sda\n", "zfs-list": b"rpool\n"}),
    )
    collection = collection_of(inventory={"zfs-list": b"rpool tank\n"})
    collection.failed_commands.append("qm-list")
    collection.over_limit_commands["lsblk"] = "over its 1 MiB"
    collection.failed_commands.append("pvecm-status")  # never had an output: nothing to keep
    assert carry_over(repository, parent, repository.file_ids(parent), collection) == 0
    assert collection.inventory == {
        "zfs-list": b"rpool tank\n",
        "qm-list": b"100\n",
        "lsblk": b"sda\n",
    }


# -- the change list --------------------------------------------------------------


def changes_between(
    repository: HostRepository, before: Collection, after: Collection
) -> list[tuple[str, str]]:
    parent = commit(repository, before)
    contents = snapshot_files(after)
    prepared = prepare_tree(contents)
    return describe_changes(
        repository, parent, repository.file_ids(parent), prepared.files, contents
    )


def test_changes_are_added_modified_deleted_then_owner_and_mode(
    repository: HostRepository,
) -> None:
    before = collection_of(
        Entry("etc/a", "file", b"a\n"),
        Entry("etc/b", "file", b"b\n"),
        Entry("etc/c", "file", b"c\n", 0o644, "root", "root"),
        Entry("etc/d", "file", b"d\n"),
    )
    after = collection_of(
        Entry("etc/a", "file", b"a changed\n"),
        Entry("etc/c", "file", b"c\n", 0o600, "root", "adm"),  # only owner and mode
        Entry("etc/d", "file", b"d\n"),
        Entry("etc/e", "file", b"e\n"),
    )
    assert changes_between(repository, before, after) == [
        ("etc/a", ChangeKind.MODIFIED),
        ("etc/b", ChangeKind.DELETED),
        ("etc/e", ChangeKind.ADDED),
        ("etc/c", ChangeKind.OWNER_MODE),
    ]


def test_a_changed_file_whose_mode_also_changed_is_listed_once(
    repository: HostRepository,
) -> None:
    before = collection_of(Entry("etc/a", "file", b"a\n", 0o644))
    after = collection_of(Entry("etc/a", "file", b"b\n", 0o600))
    assert changes_between(repository, before, after) == [("etc/a", ChangeKind.MODIFIED)]


def test_no_change_is_an_empty_list(repository: HostRepository) -> None:
    same = collection_of(Entry("etc/a", "file", b"a\n"))
    assert changes_between(repository, same, same) == []


# -- the mass-deletion guard ------------------------------------------------------


def tree_of(count: int) -> dict[str, tuple[int, str]]:
    files = {f"etc/f{number}": (FILE_MODE, f"{number:040x}") for number in range(count)}
    files[METADATA_PATH] = (FILE_MODE, "0" * 40)
    files[inventory_path("qm-list")] = (FILE_MODE, "1" * 40)
    return files


def test_the_guard_lets_small_hosts_and_half_deletions_pass() -> None:
    # Nine files (pvegit's own do not count): all may go.
    assert guard_mass_deletion(tree_of(9), [f"etc/f{n}" for n in range(9)], False) is None
    # Ten files, five deleted: half is allowed.
    assert guard_mass_deletion(tree_of(10), [f"etc/f{n}" for n in range(5)], False) is None


def test_the_guard_holds_most_deletions_and_says_which() -> None:
    deleted = [f"etc/f{n}" for n in range(6)]
    with pytest.raises(RefusedError) as caught:
        guard_mass_deletion(tree_of(10), deleted, False)
    message = str(caught.value)
    assert message.startswith(MASS_DELETION_HELD)
    assert "6 of 10 files (e.g. /etc/f0)" in message and "--force" in message
    # A run refused with that message names what was held, for the restore's refusal.
    assert held_deletions(run("refused", message)) == "6 of 10 files (e.g. /etc/f0)"
    assert held_deletions(run("failed", message)) is None
    assert held_deletions(run("refused", "pmxcfs is not running")) is None


def test_forced_past_the_guard_the_run_carries_a_warning() -> None:
    warning = guard_mass_deletion(tree_of(10), [f"etc/f{n}" for n in range(10)], True)
    assert warning == f"{MASS_DELETION_FORCED}this snapshot deletes 10 of 10 files (e.g. /etc/f0)"


# -- the commit message -------------------------------------------------------------


def test_the_first_snapshot_says_so_and_carries_the_trailers() -> None:
    options = SnapshotOptions(trigger="schedule", actor="alice", trailers=(("Restored-By", "bob"),))
    message = commit_message("pve1", [], True, 42, 7, options, False, collection_of())
    assert message == (
        "pve1: first snapshot, 42 files\n\n"
        "Run-Id: 7\nTrigger: schedule\nTriggered-By: alice\nRestored-By: bob\n"
    )


def test_the_subject_names_four_changes_and_counts_the_rest() -> None:
    changes = [
        ("etc/pve/storage.cfg", ChangeKind.MODIFIED),
        ("etc/hosts", ChangeKind.ADDED),
        (".pvegit/inventory/qm-list.txt", ChangeKind.MODIFIED),
        ("etc/old", ChangeKind.DELETED),
        ("etc/ssh/sshd_config", ChangeKind.OWNER_MODE),
        ("etc/six", ChangeKind.ADDED),
    ]
    message = commit_message(
        "pve1", changes, False, 99, 3, SnapshotOptions(), False, collection_of()
    )
    subject, blank, *body = message.splitlines()
    assert subject == (
        "pve1: 6 files changed: storage.cfg, hosts, inventory/qm-list, old and 2 more"
    )
    assert blank == ""
    assert body[:6] == [
        "  modified  /etc/pve/storage.cfg",
        "     added  /etc/hosts",
        "  modified  /.pvegit/inventory/qm-list.txt",
        "   deleted  /etc/old",
        "owner/mode  /etc/ssh/sshd_config",
        "     added  /etc/six",
    ]
    assert body[6:] == ["", "Run-Id: 3", "Trigger: manual"]
    one = commit_message(
        "pve1", changes[:1], False, 99, 3, SnapshotOptions(), False, collection_of()
    )
    assert one.startswith("pve1: 1 file changed: storage.cfg\n")


def test_a_partial_snapshot_lists_what_it_could_not_read() -> None:
    collection = collection_of()
    collection.unreadable.append("etc/pve/priv")
    collection.problems.append("tar: etc/pve/priv: Cannot open: Transport endpoint")
    message = commit_message(
        "pve1", [("etc/a", ChangeKind.MODIFIED)], False, 1, 5, SnapshotOptions(), True, collection
    )
    assert (
        "Partial snapshot: some paths could not be read.\n"
        "  unreadable: /etc/pve/priv\n"
        "  problem: tar: etc/pve/priv: Cannot open: Transport endpoint\n\n"
        "Run-Id: 5\n"
    ) in message


def test_a_name_from_the_node_cannot_forge_a_line_or_a_trailer() -> None:
    hostile = "etc/x\nRun-Id: 999\n\x1b[2J"
    message = commit_message(
        "pve1",
        [(hostile, ChangeKind.ADDED)],
        False,
        1,
        5,
        SnapshotOptions(),
        False,
        collection_of(),
    )
    lines = message.splitlines()
    assert [line for line in lines if line.startswith("Run-Id:")] == ["Run-Id: 5"]
    assert not any("\x1b" in line for line in lines)
    assert len(lines) == 6  # subject, blank, one change, blank, two trailers


# -- failures ------------------------------------------------------------------------


def test_transient_failures_are_the_ones_worth_retrying() -> None:
    for error in (ConnectError("unreachable"), CollectError("cut"), LockTimeout("busy")):
        assert failure_kind(error) == "transient"
    assert failure_kind(ConfigError("bad include")) == "permanent"
    assert failure_kind(RefusedError("pmxcfs down")) == "permanent"
