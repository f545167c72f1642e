"""pvegit's own home ($PVEGIT_HOME: its private key, web_secret, state.db) is never
collected from any host, whatever the includes say and whatever the transport."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pvegit.actions.snapshot import take_snapshot
from pvegit.config.home import Home
from pvegit.state.store import Host, Store
from testbed.nodes import Node, register_node
from web.security import load_secret_key


def _credentials(home: Home) -> list[bytes]:
    """What must never be in a repository: the key's body and the session secret."""
    key_lines = home.private_key_path.read_text().splitlines()
    secret = load_secret_key(home.root / "web_secret")
    return [line.encode() for line in key_lines[1:-1] if line.strip()] + [secret.encode()]


def _all_objects(repository: Path) -> bytes:
    """Every object of the repository, decompressed, by the real git."""
    completed = subprocess.run(
        ["git", "--git-dir", str(repository), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return completed.stdout


def _tree_paths(repository: Path) -> list[str]:
    completed = subprocess.run(
        ["git", "--git-dir", str(repository), "ls-tree", "-r", "--name-only", "main"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return completed.stdout.splitlines()


def _includes_into(home: Home, tmp_path: Path) -> tuple[str, ...]:
    """Every way of naming the home: itself, inside, a glob, a parent, through a symlink."""
    (tmp_path / "ordinary.txt").write_text("an ordinary file next to the home\n")
    (tmp_path / "link").symlink_to(home.root)
    (tmp_path / "linked-ssh").symlink_to(home.root / "ssh")
    return (
        str(home.root),
        str(home.root / "ssh"),
        str(home.private_key_path),
        str(home.root / "web_secret"),
        str(home.state_path),
        f"{home.root}/*",
        str(tmp_path / "ordinary.txt"),
        str(tmp_path / "link" / "ssh" / "id_ed25519"),
        str(tmp_path / "link" / "web_secret"),
        str(tmp_path / "linked-ssh" / "id_ed25519"),
    )


def test_a_local_root_host_with_includes_into_the_home_collects_none_of_it(
    home: Home, store: Store, tmp_path: Path
) -> None:
    """A CLI-made `local:/` host (root on this machine) pointed at the home."""
    secrets = _credentials(home)
    host = store.add_host(
        Host("self", "local:/", categories=("network",), includes=_includes_into(home, tmp_path))
    )
    run = take_snapshot(home, store, host)
    assert run.status in ("changed", "partial"), run.error
    repository = home.repo_path("self")
    objects = _all_objects(repository)
    for secret in secrets:
        assert secret not in objects
    assert b"SQLite format 3" not in objects
    paths = _tree_paths(repository)
    home_in_tree = str(home.root).lstrip("/")
    assert not [path for path in paths if path.startswith(home_in_tree)], paths
    assert not [path for path in paths if "/link/" in path or "/linked-ssh/" in path], paths
    # The rest is collected: the exclusion takes the home out, nothing else.
    assert str(tmp_path / "ordinary.txt").lstrip("/") in paths
    assert "etc/hostname" in paths
    skipped = [warning for warning in run.warnings if "pvegit's own home" in warning]
    assert any("id_ed25519" in warning for warning in skipped), run.warnings


def test_a_local_root_that_is_the_home_or_contains_it(
    home: Home, store: Store, tmp_path: Path
) -> None:
    secrets = _credentials(home)
    (tmp_path / "ordinary.txt").write_text("an ordinary file next to the home\n")
    for name, root, includes in (
        ("home-root", home.root, ("/ssh", "/web_secret", "/state.db")),
        ("whole-parent", Path("/"), (str(tmp_path),)),
        ("parent-root", tmp_path, (f"/{home.root.name}",)),
        ("symlinked-root", tmp_path / "link", ("/ssh",)),
    ):
        if name == "symlinked-root":
            (tmp_path / "link").symlink_to(home.root)
        host = store.add_host(
            Host(name, f"local:{root}", categories=("network",), includes=includes)
        )
        take_snapshot(home, store, host)
        objects = _all_objects(home.repo_path(name))
        assert not [secret for secret in secrets if secret in objects], name
        if name == "whole-parent":
            paths = _tree_paths(home.repo_path(name))
            assert str(tmp_path / "ordinary.txt").lstrip("/") in paths
            assert not [path for path in paths if path.startswith(str(home.root).lstrip("/"))]


def test_the_demo_node_inside_the_home_is_still_collected(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
) -> None:
    result = cli("demo", "--no-serve")
    assert result.code == 0, result.err
    paths = _tree_paths(home.repo_path("pve-demo"))
    assert "etc/pve/storage.cfg" in paths and "etc/network/interfaces" in paths
    from pvegit.config.home import HOME_TAG

    assert (home.root / HOME_TAG).is_file()
    objects = _all_objects(home.repo_path("pve-demo"))
    assert not [secret for secret in _credentials(home) if secret in objects]


def test_an_ssh_node_that_sees_the_home_collects_none_of_it(
    home: Home, store: Store, node: Node, tmp_path: Path
) -> None:
    """The test bed's nodes share this machine's /tmp: an SSH "node" that is the
    pvegit machine itself (pvegit backing up its own host) reads the real home."""
    secrets = _credentials(home)
    host = register_node(store, home, node, categories=("network",))
    host = store.update_host(host.name, includes=_includes_into(home, tmp_path))
    run = take_snapshot(home, store, host)
    assert run.status in ("changed", "partial"), run.error
    objects = _all_objects(home.repo_path(host.name))
    for secret in secrets:
        assert secret not in objects
    paths = _tree_paths(home.repo_path(host.name))
    assert str(tmp_path / "ordinary.txt").lstrip("/") in paths
    assert not [path for path in paths if path.startswith(str(home.root).lstrip("/"))]
