"""A damaged repository is never an empty one; repair; gc keeps what state.db names.

Every case starts from a host with three commits made by the CLI (a demo
node's tree through the ``local:`` transport), damages real files the way a
power cut or a bad disk does, and checks with the real git client.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from diskfaults import History, make_history, newest_pack

from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.state.store import Store

MAIN = "refs/heads/main"


@pytest.fixture
def history(cli, home: Home, tmp_path: Path) -> History:  # type: ignore[no-untyped-def]
    return make_history(cli, home, tmp_path)


def _write_ref(content: bytes) -> Callable[[History], None]:
    def damage(history: History) -> None:
        (history.repository / MAIN).write_bytes(content)

    return damage


def _ref_to_tree(history: History) -> None:
    tree = history.git("rev-parse", "main^{tree}").strip()
    (history.repository / MAIN).write_text(tree + "\n")


def _bad_packed_refs(history: History) -> None:
    (history.repository / MAIN).unlink()
    (history.repository / "packed-refs").write_bytes(b"# pack-refs with: peeled\nnot a ref line\n")


def _missing_ref(history: History) -> None:
    (history.repository / MAIN).unlink()  # the reflog still tells that main existed


REF_DAMAGE: dict[str, Callable[[History], None]] = {
    "empty": _write_ref(b""),
    "zeroed": _write_ref(b"\0" * 41),
    "garbage with escapes": _write_ref(b"\x1b]0;owned\x07\x1b[2J not a commit\n"),
    "a short id": _write_ref(b"1234abcd\n"),
    "dangling": _write_ref(b"0123456789abcdef0123456789abcdef01234567\n"),
    "a tree": _ref_to_tree,
    "bad packed-refs": _bad_packed_refs,
    "missing": _missing_ref,
}


def _pack_names(history: History) -> set[str]:
    return {path.name for path in (history.repository / "objects" / "pack").iterdir()}


def _says_damaged(text: str) -> None:
    assert "the repository of pve1 is damaged" in text, text
    assert "pvegit repair pve1" in text, text
    assert "\x1b" not in text and "Traceback" not in text, text


@pytest.mark.parametrize("damage", REF_DAMAGE, ids=list(REF_DAMAGE))
def test_a_damaged_ref_is_never_an_empty_history(
    cli,  # type: ignore[no-untyped-def]
    history: History,
    store: Store,
    tmp_path: Path,
    damage: str,
) -> None:
    REF_DAMAGE[damage](history)
    packs = _pack_names(history)
    ref_files = {
        name: (history.repository / name).read_bytes()
        for name in (MAIN, "packed-refs")
        if (history.repository / name).exists()
    }
    (history.home.root / "pvegit.toml").write_text(
        f'[server]\nmirror = "file://{tmp_path}/mirror/{{host}}.git"\n'
    )

    log = cli("log", "pve1")
    assert log.code == 1 and log.out == ""
    _says_damaged(log.err)
    for arguments in (
        ("diff", "pve1"),
        ("show", "pve1", "HEAD"),
        ("show", "pve1", f"{history.commits[1]}:/etc/hostname"),
        ("export", "pve1", "-o", str(tmp_path / "out.tar.gz")),
        ("restore", "pve1", "HEAD", "--to-dir", str(tmp_path / "restored")),
        ("restore", "pve1", history.commits[1], "/etc/pve/storage.cfg", "--yes"),
        ("gc",),
        ("reindex",),
        ("mirror",),
    ):
        result = cli(*arguments)
        assert result.code == 1, arguments
        _says_damaged(result.err)
    assert not (tmp_path / "out.tar.gz").exists() and not (tmp_path / "mirror").exists()
    verify = cli("verify", "--no-node")
    assert verify.code == 1 and "pvegit repair pve1" in verify.err and "\x1b" not in verify.err

    history.node.edit_something()
    snapshot = cli("snapshot", "pve1")
    assert snapshot.code == 1
    _says_damaged(snapshot.err)
    assert store.runs("pve1", limit=1)[0].status == "failed"
    assert _pack_names(history) == packs  # nothing was written
    for name, content in ref_files.items():
        assert (history.repository / name).read_bytes() == content

    repair = cli("repair", "pve1")
    assert repair.code == 0, repair.err
    assert f"main now points at {history.commits[0][:10]}" in repair.out
    assert "the newest commit the run log records (run 3)" in repair.out
    assert "\x1b" not in repair.out
    if damage == "missing":
        assert f"{MAIN} was missing, but its reflog" in repair.out
    else:
        assert "damaged files are kept in" in repair.out
        assert any(path.is_file() for path in (history.repository / "damaged").rglob("*"))
    assert history.fsck() == ""
    assert history.log() == history.commits
    assert cli("verify", "--no-node").code == 0
    again = cli("snapshot", "pve1")
    assert again.code == 0 and "changed" in again.out, again.err
    assert history.log()[1:] == history.commits  # the next commit builds on the old history
    assert (
        cli("repair", "pve1")
        .out.strip()
        .endswith("nothing to repair (the repository is whole, the run log complete)")
    )


def test_a_damaged_repository_is_an_error_page_and_a_json_error(
    home: Home, history: History, store: Store
) -> None:
    from starlette.testclient import TestClient
    from test_web import PASSWORD, login

    from pvegit.state.credentials import hash_password, hash_token
    from web.app import create_app

    store.add_user("admin", hash_password(PASSWORD))
    store.add_token("ci", hash_token("pvegit_ci-token"), None)
    (history.repository / MAIN).write_bytes(b"")
    app = create_app(home, Config(concurrency=1), store=store)
    with TestClient(app, follow_redirects=False) as client:
        login(client)
        for url in (
            "/hosts/pve1",
            f"/hosts/pve1/commits/{history.commits[1]}",
            "/hosts/pve1/tree/HEAD",
        ):
            page = client.get(url)
            assert page.status_code == 503, url
            assert "Repository damaged" in page.text and "pvegit repair pve1" in page.text
        bearer = {"Authorization": "Bearer pvegit_ci-token"}
        for url in ("/api/v1/hosts/pve1/commits", "/api/v1/hosts/pve1/diff"):
            answer = client.get(url, headers=bearer)
            assert answer.status_code == 503, url
            assert "pvegit repair pve1" in answer.json()["error"]
        refs = client.get("/git/pve1.git/info/refs", auth=("admin", PASSWORD))
        assert refs.status_code == 503 and "pvegit repair pve1" in refs.text


def test_repair_of_a_healthy_repository_changes_nothing(
    cli, history: History, store: Store
) -> None:  # type: ignore[no-untyped-def]
    before = {path: path.read_bytes() for path in history.repository.rglob("*") if path.is_file()}
    result = cli("repair", "pve1")
    assert result.code == 0
    assert result.out == "pve1: nothing to repair (the repository is whole, the run log complete)\n"
    after = {path: path.read_bytes() for path in history.repository.rglob("*") if path.is_file()}
    assert after == before
    assert store.audit_events(action="repair") == []


def test_repair_without_a_run_log_takes_the_newest_complete_stored_commit(
    cli,  # type: ignore[no-untyped-def]
    history: History,
    store: Store,
) -> None:
    (history.repository / MAIN).write_bytes(b"")
    with store.transaction() as connection:
        connection.execute("DELETE FROM runs")
    result = cli("repair", "pve1")
    assert result.code == 0, result.err
    assert f"main now points at {history.commits[0][:10]}" in result.out
    assert "the run log records none: the newest complete commit found in the object store" in (
        result.out
    )
    assert "recorded 3 run(s) the run log lacked" in result.out
    assert history.log() == history.commits
    assert [run.commit_id for run in store.runs("pve1")] == history.commits
    assert store.audit_events(action="repair")[0].detail["main_after"] == history.commits[0]


def test_nothing_complete_left_needs_accept_loss_then_starts_anew(
    cli,  # type: ignore[no-untyped-def]
    history: History,
    store: Store,
) -> None:
    for pack in (history.repository / "objects" / "pack").glob("pack-*.pack"):
        pack.chmod(0o600)
        pack.write_bytes(b"\0" * pack.stat().st_size)
    packs = len(list((history.repository / "objects" / "pack").glob("pack-*")))
    refused = cli("repair", "pve1")
    assert refused.code == 1 and "--accept-loss" in refused.err
    assert "no complete commit is left" in refused.err
    # nothing deleted: every pack and index is in damaged/
    assert len([path for path in (history.repository / "damaged").rglob("pack-*")]) == packs
    assert cli("snapshot", "pve1").code == 1

    accepted = cli("repair", "pve1", "--accept-loss")
    assert accepted.code == 0, accepted.err
    assert "3 commit(s) the run log recorded are lost" in accepted.out
    started = cli("snapshot", "pve1")
    assert started.code == 0, started.err
    assert history.git("log", "--format=%s", "main").startswith("pve1: first snapshot")
    assert history.fsck() == ""
    assert cli("verify", "--no-node").code == 0
    assert set(store.audit_events(action="repair")[0].detail["lost"]) == set(history.commits)


def test_a_missing_repository_is_not_recreated_over_recorded_history(
    cli,  # type: ignore[no-untyped-def]
    history: History,
    tmp_path: Path,
) -> None:
    history.repository.rename(tmp_path / "elsewhere.git")
    snapshot = cli("snapshot", "pve1")
    assert snapshot.code == 1 and "the run log records 3 commit(s)" in snapshot.err
    assert not history.repository.exists()  # not created anew
    assert cli("log", "pve1").code == 1
    assert "missing" in cli("verify", "--no-node").err
    refused = cli("repair", "pve1")
    assert refused.code == 1 and "from a backup or the mirror" in refused.err

    (tmp_path / "elsewhere.git").rename(history.repository)  # put back, as advised
    assert cli("repair", "pve1").out.endswith(
        "nothing to repair (the repository is whole, the run log complete)\n"
    )
    assert history.log() == history.commits


def test_a_missing_repository_can_start_anew_when_the_loss_is_accepted(
    cli,  # type: ignore[no-untyped-def]
    history: History,
    tmp_path: Path,
) -> None:
    history.repository.rename(tmp_path / "gone.git")
    assert cli("repair", "pve1", "--accept-loss").code == 0
    assert cli("snapshot", "pve1").code == 0
    assert history.git("log", "--format=%s").startswith("pve1: first snapshot")
    assert cli("verify", "--no-node").code == 0


def test_a_damaged_head_or_config_is_repaired(cli, history: History) -> None:  # type: ignore[no-untyped-def]
    (history.repository / "HEAD").write_bytes(b"")
    (history.repository / "config").write_bytes(b"garbage[\n\0\0\0")
    log = cli("log", "pve1")
    assert log.code == 1 and "config cannot be read" in log.err and "pvegit repair" in log.err
    repair = cli("repair", "pve1")
    assert repair.code == 0, repair.err
    assert "wrote a new config" in repair.out and "wrote HEAD anew" in repair.out
    assert history.git("symbolic-ref", "HEAD").strip() == MAIN
    assert history.git("log", "--format=%H").split() == history.commits
    assert history.fsck() == ""
    history.node.edit_something()
    assert cli("snapshot", "pve1").code == 0
    assert history.git("config", "pvegit.host").strip() == "pve1"  # the settings are back


def _assert_complete(history: History, commit_id: str) -> None:
    """The commit, its whole tree and every commit before it, read by git itself."""
    listing = history.git("rev-list", "--objects", commit_id)
    check = subprocess.run(
        ["git", "--git-dir", str(history.repository), "cat-file", "--batch-check"],
        input="".join(line.split()[0] + "\n" for line in listing.splitlines()),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "missing" not in check.stdout, check.stdout
    history.git("archive", "--format=tar", "-o", "/dev/null", commit_id)


def test_gc_keeps_the_commits_the_run_log_names(cli, history: History) -> None:  # type: ignore[no-untyped-def]
    # main put back one commit (an old copy of the ref file): the newest commit
    # is now named only by the run log
    history.git("update-ref", MAIN, history.commits[1])
    result = cli("gc")
    assert result.code == 0, result.err
    _assert_complete(history, history.commits[0])
    assert "kept 1 commit(s) main does not reach" in result.out
    assert history.fsck() == ""
    assert len(list((history.repository / "objects" / "pack").glob("*.pack"))) == 1


def test_gc_keeps_what_restores_name(cli, history: History, store: Store) -> None:  # type: ignore[no-untyped-def]
    oldest_tree = history.git("rev-parse", f"{history.commits[2]}^{{tree}}").strip()
    identity = ("-c", "user.name=admin", "-c", "user.email=admin@example.org")
    restored_from = history.git(*identity, "commit-tree", oldest_tree, "-m", "kept aside").strip()
    restore = cli("restore", "pve1", restored_from, "/etc/pve/storage.cfg", "--yes")
    assert restore.code == 0, restore.err
    assert f"Restored-From: {restored_from}" in history.git("log", "-1", "--format=%B")
    before_commit = history.git(*identity, "commit-tree", oldest_tree, "-m", "audit only").strip()
    store.audit("cli:admin", "restore", "pve1", revision=history.commits[1], before=before_commit)
    # the trailer alone must keep the first: forget what the audit log says of it
    with store.transaction() as connection:
        connection.execute(
            "DELETE FROM audit WHERE action='restore' AND detail LIKE ?", (f"%{restored_from}%",)
        )
    result = cli("gc")
    assert result.code == 0, result.err
    for commit_id in (restored_from, before_commit):
        history.git("cat-file", "-e", commit_id)
        _assert_complete(history, commit_id)
    assert history.fsck() == ""


def test_gc_refuses_a_damaged_repository_and_removes_nothing(cli, history: History) -> None:  # type: ignore[no-untyped-def]
    newest = newest_pack(history.repository)
    newest.chmod(0o600)
    newest.write_bytes(newest.read_bytes()[:-100])
    files = sorted(path.name for path in (history.repository / "objects" / "pack").iterdir())
    result = cli("gc")
    assert result.code == 1 and "pvegit repair pve1" in result.err
    assert (
        sorted(path.name for path in (history.repository / "objects" / "pack").iterdir()) == files
    )


def test_bit_rot_inside_an_old_pack_is_named_not_a_traceback(cli, history: History) -> None:  # type: ignore[no-untyped-def]
    packs = sorted(
        (history.repository / "objects" / "pack").glob("pack-*.pack"),
        key=lambda path: path.stat().st_mtime_ns,
    )
    oldest = packs[0]  # the first snapshot's: main's own commit is elsewhere and reads fine
    data = bytearray(oldest.read_bytes())
    for offset in range(200, len(data) - 40, 97):
        data[offset] ^= 0xFF
    oldest.chmod(0o600)
    oldest.write_bytes(bytes(data))  # same length, same trailer: only reading finds it
    for arguments in (
        ("log", "pve1"),
        ("show", "pve1", "HEAD~2"),
        ("diff", "pve1", "HEAD~2", "HEAD"),
        ("export", "pve1", "HEAD~2", "-o", str(history.home.root / "x.tar.gz")),
    ):
        result = cli(*arguments)
        assert result.code == 1, arguments
        assert "the repository of pve1 is damaged" in result.err, result.err
        assert "cannot be read" in result.err and "pvegit verify pve1" in result.err
    verify = cli("verify", "--no-node")
    assert verify.code == 1 and oldest.name in verify.err and "pvegit repair pve1" in verify.err


def test_a_missing_ref_with_commits_in_store_is_damage_even_without_other_traces(
    cli,  # type: ignore[no-untyped-def]
    history: History,
    store: Store,
) -> None:
    (history.repository / MAIN).unlink()
    (history.repository / "logs" / MAIN).unlink()
    history.git("config", "--remove-section", "pvegit")
    with store.transaction() as connection:
        connection.execute("DELETE FROM runs")
    log = cli("log", "pve1")
    assert log.code == 1 and "the object store holds commits" in log.err
    assert cli("snapshot", "pve1").code == 1  # no new root beside the old history
    repair = cli("repair", "pve1")
    assert repair.code == 0 and f"main now points at {history.commits[0][:10]}" in repair.out
    assert history.log() == history.commits


def test_accept_loss_with_only_incomplete_commits_left_starts_anew(
    cli,  # type: ignore[no-untyped-def]
    history: History,
) -> None:
    oldest = sorted(
        (history.repository / "objects" / "pack").glob("pack-*.pack"),
        key=lambda path: path.stat().st_mtime_ns,
    )[0]
    oldest.chmod(0o600)
    oldest.write_bytes(b"\0" * oldest.stat().st_size)  # the first snapshot's files: in every tree
    refused = cli("repair", "pve1")
    assert refused.code == 1 and "no complete commit is left" in refused.err
    accepted = cli("repair", "pve1", "--accept-loss")
    assert accepted.code == 0, accepted.err
    assert "object file(s) left to" in accepted.out
    started = cli("snapshot", "pve1")
    assert started.code == 0, started.err
    assert history.git("log", "--format=%s").startswith("pve1: first snapshot")
    assert history.fsck() == ""
    kept = {path.name for path in (history.repository / "damaged").rglob("pack-*.pack")}
    assert len(kept) == 3  # every old pack is kept aside, none deleted
