"""pvegit verify: damaged repositories, an inconsistent run log, the node compared."""

from __future__ import annotations

from pathlib import Path

from pvegit.config.home import Home
from pvegit.demo.node import DemoNode
from pvegit.state.store import Store


def setup(cli, tmp_path: Path) -> DemoNode:  # type: ignore[no-untyped-def]
    node = DemoNode(tmp_path / "node", "pve1")
    node.create()
    assert (
        cli("host", "add", "pve1", "--address", f"local:{node.root}", "--category", "cluster").code
        == 0
    )
    assert cli("snapshot", "pve1").code == 0
    node.edit_something()
    assert cli("snapshot", "pve1").code == 0
    return node


def test_a_healthy_host_verifies(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup(cli, tmp_path)
    result = cli("verify")
    assert result.code == 0, result.err
    assert result.out.startswith("pve1: ok, ") and "files match the node" in result.out


def test_a_damaged_pack_is_found(cli, home: Home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup(cli, tmp_path)
    for pack in (home.repo_path("pve1") / "objects/pack").glob("*.pack"):
        data = bytearray(pack.read_bytes())
        for offset in range(200, len(data) - 40, 97):
            data[offset] ^= 0xFF  # bit rot in the middle of the pack
        pack.write_bytes(bytes(data))
    result = cli("verify", "--no-node")
    assert result.code == 1 and "cannot be read" in result.err


def test_a_run_whose_commit_is_missing_is_found(
    cli,
    home: Home,
    store: Store,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    setup(cli, tmp_path)
    run_id = store.start_run("pve1", "cli")
    store.finish_run(run_id, status="changed", commit_id="ab" * 20)
    result = cli("verify", "--no-node")
    assert result.code == 1
    assert f"run {run_id} made commit abababab" in result.err
