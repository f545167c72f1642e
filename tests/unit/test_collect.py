"""Unit tests of collecting from a node: the scripts built for a selection, run with the
real /bin/sh and GNU tar against a directory in tmp_path, and the probe read back."""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvegit.config.home import HOME_TAG
from pvegit.config.selection import Selection, resolve_selection
from pvegit.errors import CollectError, ConnectError
from pvegit.node.collector import needs_pve, tar_script
from pvegit.node.probe import PMXCFS_CRASHED, Probe, parse_probe, probe_node
from pvegit.node.program import PVE_PROBE_SECONDS
from pvegit.node.transport import LocalTransport


@dataclass
class Ran:
    members: list[str]  # as tar sent them, in order, duplicates kept
    stderr: bytes
    exit_code: int


def run_tar_script(root: Path, selection: Selection, *, live: bool = False) -> Ran:
    script = tar_script(str(root), selection, live=live)
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=60)
    members = []
    if done.stdout:
        with tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:") as archive:
            members = [member.name for member in archive.getmembers()]
    return Ran(members, done.stderr, done.returncode)


def selection(*paths: str, excludes: tuple[str, ...] = ()) -> Selection:
    return Selection(paths=paths, excludes=excludes, commands=(), include_secrets=False)


def write(root: Path, path: str, content: str = "x\n") -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return target


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A small node tree: no /etc/pve unless a test makes one."""
    root = tmp_path / "node"
    write(root, "etc/hostname", "pve1\n")
    write(root, "etc/hosts", "127.0.0.1 localhost\n")
    write(root, "etc/network/interfaces", "auto lo\n")
    write(root, "etc/network/interfaces.d/sdn", "#version:7\n")
    write(root, "etc/cron.d/backup", "0 2 * * * root true\n")
    write(root, "etc/cron.d/zfs", "24 0 * * * root scrub\n")
    return root


# -- the tar script --------------------------------------------------------------


def test_the_script_streams_the_selection_without_the_excludes(node: Path) -> None:
    ran = run_tar_script(
        node,
        selection(
            "etc/hosts",
            "etc/network",
            "etc/cron.d/b*",  # a glob, expanded on the node
            "etc/not-there",  # absent: left out, not an error
            excludes=("etc/network/interfaces.d",),
        ),
    )
    assert ran.exit_code == 0, ran.stderr
    assert sorted(ran.members) == [
        "etc/cron.d/backup",
        "etc/hosts",
        "etc/network",
        "etc/network/interfaces",
    ]
    # The probe answered on stderr before tar ran.
    probe = parse_probe(ran.stderr)
    assert (probe.hostname, probe.pve_directory) == ("pve1", False)


def test_a_path_inside_another_is_read_once(node: Path) -> None:
    ran = run_tar_script(node, selection("etc/network", "etc/network/interfaces"))
    assert ran.members.count("etc/network/interfaces") == 1


def test_nothing_to_read_is_an_empty_stream_not_a_failure(node: Path) -> None:
    ran = run_tar_script(node, selection("etc/not-there", "opt/nothing/*"))
    assert (ran.exit_code, ran.members) == (0, [])


def test_the_script_stops_before_reading_when_pve_is_wanted_but_not_served(node: Path) -> None:
    (node / "etc/pve").mkdir()  # a plain empty directory: pmxcfs is not serving it
    ran = run_tar_script(node, selection("etc/pve", "etc/hosts"))
    assert (ran.exit_code, ran.members) == (97, [])
    write(node, "etc/pve/.version", "{}\n")  # readable now; a rescued disk needs no mount
    ran = run_tar_script(node, selection("etc/pve", "etc/hosts"))
    assert ran.exit_code == 0 and "etc/pve/.version" in ran.members
    # On the node itself (live) it must also be a mount of its own: here it is not.
    assert needs_pve(selection("etc/pve/storage.cfg"))
    assert not needs_pve(selection("etc/pvefoo", "etc/hosts"))


def injected(tmp_path: Path) -> list[Path]:
    """Files an injected ``touch pwned`` made (it would run inside the node's root)."""
    return list(tmp_path.rglob("pwned"))


def test_hostile_names_on_the_node_are_data_not_shell(node: Path, tmp_path: Path) -> None:
    names = [
        "a b",
        "it's",
        "$(touch pwned)",
        "`touch pwned`",
        "semi;colon",
        "new\nline",
        "back\\slash",
        "-rf",
    ]
    for name in names:
        write(node, f"etc/odd/{name}", "odd\n")
    ran = run_tar_script(node, selection("etc/odd"))
    assert ran.exit_code == 0, ran.stderr
    assert sorted(ran.members) == sorted(["etc/odd", *(f"etc/odd/{name}" for name in names)])
    assert injected(tmp_path) == []


def test_excludes_and_the_root_are_quoted(tmp_path: Path) -> None:
    root = tmp_path / "root it's $(touch pwned); `touch pwned`"
    write(root, "etc/hostname", "pve1\n")
    write(root, "etc/odd/keep", "k\n")
    write(root, "etc/odd/it's $(touch pwned); x", "excluded\n")
    hostile_exclude = "etc/odd/it's $(touch pwned); x"
    ran = run_tar_script(root, selection("etc/odd", excludes=(hostile_exclude,)))
    assert ran.exit_code == 0, ran.stderr
    assert sorted(ran.members) == ["etc/odd", "etc/odd/keep"]
    assert injected(tmp_path) == []


def test_a_missing_root_is_exit_98(tmp_path: Path) -> None:
    ran = run_tar_script(tmp_path / "gone", selection("etc/hosts"))
    assert (ran.exit_code, ran.members) == (98, [])


def test_pvegits_own_home_is_never_collected(node: Path) -> None:
    write(node, "var/lib/pvegit/" + HOME_TAG, "")
    write(node, "var/lib/pvegit/state.db", "state\n")
    write(node, "var/lib/pvegit/demo-node/etc/hosts", "demo\n")  # the demo's nodes are exempt
    write(node, "var/lib/other/keep", "k\n")
    (node / "etc/to-home").symlink_to("../var/lib/pvegit")
    ran = run_tar_script(
        node,
        selection(
            "var/lib/other",
            "var/lib/pvegit/state.db",  # named inside the home
            "etc/to-home/state.db",  # reached through a link
            "var/lib/pvegit/demo-node/etc/hosts",
        ),
    )
    assert ran.exit_code == 0, ran.stderr
    assert "var/lib/other/keep" in ran.members
    assert not [member for member in ran.members if "state.db" in member]
    assert "var/lib/pvegit/demo-node/etc/hosts" in ran.members
    skipped = [line for line in ran.stderr.splitlines() if line.startswith(b"pvegit-skip ")]
    assert skipped == [
        b"pvegit-skip var/lib/pvegit/state.db",
        b"pvegit-skip etc/to-home/state.db",
    ]
    # Below a directory tar reads, the home is left out by its tag.
    ran = run_tar_script(node, selection("var/lib"))
    assert sorted(ran.members) == ["var/lib", "var/lib/other", "var/lib/other/keep"]


def test_a_resolved_selection_runs(node: Path) -> None:
    """What a host's categories become is a script the shell accepts (every category)."""
    chosen = resolve_selection(("cluster", "network", "storage", "system", "secrets"))
    write(node, "etc/pve/.version", "{}\n")
    ran = run_tar_script(node, chosen)
    assert ran.exit_code == 0, ran.stderr
    assert "etc/hosts" in ran.members and "etc/network/interfaces.d/sdn" in ran.members


# -- the probe ------------------------------------------------------------------------


def test_the_probe_lines_are_parsed() -> None:
    stderr = (
        b"noise from a login script\n"
        b"pvegit-probe hostname=pve 1 \x1b[31mred\n"
        b"pvegit-probe uid=3901\n"
        b"pvegit-probe pve_directory=1 pve_mounted=1 pve_readable=0\n"
        b"pvegit-probe pve_error=cat: etc/pve/.version: Permission denied\n"
    )
    probe = parse_probe(stderr)
    assert probe == Probe(
        hostname="pve 1 \\x1b[31mred",  # whole, and nothing in it drives a terminal
        uid=3901,
        pve_directory=True,
        pve_mounted=True,
        pve_readable=False,
        pve_error="cat: etc/pve/.version: Permission denied",
    )


@pytest.mark.parametrize(
    "stderr",
    [b"", b"pvegit-probe hostname=pve1\n", b"pvegit-probe uid=root\n", b"sh: not found\n"],
)
def test_no_probe_answer_is_a_collect_error(stderr: bytes) -> None:
    with pytest.raises(CollectError, match="did not answer pvegit's probe"):
        parse_probe(stderr)


def probe(**state: object) -> Probe:
    values: dict[str, object] = {
        "hostname": "pve1",
        "uid": 0,
        "pve_directory": True,
        "pve_mounted": True,
        "pve_readable": True,
    }
    values.update(state)
    return Probe(**values)  # type: ignore[arg-type]


def test_pmxcfs_problems_are_named_in_plain_words() -> None:
    assert probe().pmxcfs_problem(live=True) is None
    cases = {
        "not a Proxmox VE node": probe(pve_directory=False),
        f"did not respond within {PVE_PROBE_SECONDS} s": probe(
            pve_readable=False, pve_error="hung: no answer"
        ),
        "pmxcfs has crashed": probe(pve_readable=False, pve_error=f"ls: {PMXCFS_CRASHED}"),
        "pmxcfs is not running": probe(pve_mounted=False),
        "may not read /etc/pve": probe(uid=3901, pve_readable=False, pve_error="Permission denied"),
        "mounted but unreadable": probe(pve_readable=False),
    }
    for words, state in cases.items():
        problem = state.pmxcfs_problem(live=True)
        assert problem is not None and words in problem, (words, problem)
    # A rescued disk is not mounted by pmxcfs: only its readability counts.
    assert probe(pve_mounted=False).pmxcfs_problem(live=False) is None
    empty = probe(pve_mounted=False, pve_readable=False).pmxcfs_problem(live=False)
    assert empty is not None and "/etc/pve is empty" in empty and "config.db" in empty


def test_probe_node_asks_the_real_shell(node: Path) -> None:
    transport = LocalTransport(str(node))
    found = probe_node(transport)
    assert (found.hostname, found.pve_directory, found.pve_readable) == ("pve1", False, False)
    assert found.pmxcfs_problem(live=False) is not None
    write(node, "etc/pve/.version", "{}\n")
    found = probe_node(transport)
    assert (found.pve_directory, found.pve_mounted, found.pve_readable) == (True, False, True)
    assert found.pmxcfs_problem(live=False) is None
    assert "pmxcfs is not running" in (found.pmxcfs_problem(live=True) or "")


def test_probe_node_names_a_root_that_went_away(tmp_path: Path) -> None:
    root = tmp_path / "mounted"
    root.mkdir()
    transport = LocalTransport(str(root))
    root.rmdir()
    with pytest.raises(CollectError, match="no directory"):
        probe_node(transport)
    with pytest.raises(ConnectError):
        LocalTransport(str(root))
