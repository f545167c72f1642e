"""A hostile (or broken) node over real SSH: runaway command output, crafted owner
names, control characters in what it says.
"""

from __future__ import annotations

import os
import shlex
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, Tree

from pvegit.actions.snapshot import SnapshotOptions, take_snapshot
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.config.limits import InventoryLimits
from pvegit.git.repo import HostRepository
from pvegit.layout import METADATA_PATH, inventory_path
from pvegit.node.metadata import parse_metadata
from pvegit.state.store import Store
from testbed.nodes import Node, register_node

RUNAWAY_BYTES = 64 * 1024 * 1024
# A stand-in whose output never ends before the 64 MiB (`yes` would run until SIGPIPE).
RUNAWAY = (
    "#!/bin/sh\n"
    f"yes 'pve-manager: 8.2.4 (running version: 8.2.4/faa83925c9641325)' | "
    f"/usr/bin/head -c {RUNAWAY_BYTES}\n"
)
# A node whose `head` ignores -c: the cap on the node is gone, pvegit's own must hold.
HEAD_IGNORING_LIMITS = '#!/bin/sh\nif [ "$1" = -c ]; then exec cat; fi\nexec /usr/bin/head "$@"\n'


def stored(home: Home, path: str) -> bytes:
    with HostRepository(home.repo_path("pve1")) as repository:
        head = repository.head()
        assert head is not None
        return repository.read_file(head, path)[1]


@pytest.mark.parametrize("node_caps", [True, False], ids=["node-caps", "node-ignores-caps"])
def test_a_runaway_command_is_capped_and_keeps_its_previous_output(
    home: Home, store: Store, node: Node, node_caps: bool
) -> None:
    host = register_node(store, home, node, categories=("inventory",))
    first = take_snapshot(home, store, host)
    assert first.status == "changed", first.error
    before = stored(home, inventory_path("pveversion"))
    assert b"pve-manager: 8.2.4" in before

    node.write("/usr/sbin/pveversion", RUNAWAY, mode=0o755)
    if not node_caps:
        node.write("/usr/local/bin/head", HEAD_IGNORING_LIMITS, mode=0o755)
    limits = InventoryLimits(command_bytes=64 * 1024, total_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        run = take_snapshot(home, store, host, SnapshotOptions(inventory_limits=limits))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Buffering the output would take 64 MiB at least; a paramiko window is 2 MiB.
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 64 KiB limit"
    assert run.status == "unchanged", (run.status, run.error, run.warnings)
    assert (
        "inventory command pveversion printed more than 64 KiB (inventory_command_limit_kb); "
        "kept its previous output"
    ) in run.warnings
    assert stored(home, inventory_path("pveversion")) == before
    assert b"vm100-pve1" in stored(home, inventory_path("qm-list"))


def test_the_runs_total_is_capped_too(home: Home, store: Store, node: Node) -> None:
    host = register_node(store, home, node, categories=("inventory",))
    assert take_snapshot(home, store, host).status == "changed"
    before = stored(home, inventory_path("qm-list"))
    # Each under the per-command limit, together over the run's total.
    chatty = "#!/bin/sh\nhead -c 61440 /dev/zero | tr '\\0' 'v'; echo\n"
    node.write("/usr/sbin/pveversion", chatty, mode=0o755)
    node.write("/usr/sbin/qm", chatty, mode=0o755)
    limits = InventoryLimits(command_bytes=64 * 1024, total_bytes=96 * 1024)
    run = take_snapshot(home, store, host, SnapshotOptions(inventory_limits=limits))

    assert run.status == "changed", run.error  # pveversion's new output is in
    assert stored(home, inventory_path("pveversion")).startswith(b"vvvv")
    assert stored(home, inventory_path("qm-list")) == before
    assert (
        "inventory command qm-list not read: the run's inventory reached 96 KiB "
        "(inventory_total_limit_kb); kept its previous output"
    ) in run.warnings


# 29 bytes, within GNU tar's 31-byte user name field: rendered unquoted, the line of
# every file became "f 0644 r r a", "d 755 r r ../../x", "f 0 r <group> <path>".
CRAFTED_OWNER = "r r a\nd 755 r r ../../x\nf 0 r"


def tar_with_owner(owner: str) -> str:
    """A node whose tar reports ``owner`` for every file (as an LDAP-backed NSS could)."""
    return f'#!/bin/sh\nexec /usr/bin/tar --owner={shlex.quote(owner + ":4242")} "$@"\n'


def clean_relative(name: str) -> bool:
    return not name.startswith("/") and os.path.normpath(name) == name and ".." not in name


def export_and_extract(cli, tmp_path: Path) -> set[str]:  # type: ignore[no-untyped-def]
    """Export HEAD with the CLI, extract it with tarfile deep below tmp_path; the names."""
    tmp_path.mkdir()
    archive = tmp_path / "export.tar.gz"
    result = cli("export", "pve1", "-o", str(archive))
    assert result.code == 0, result.err
    with tarfile.open(archive) as reading:
        names = reading.getnames()
    target = tmp_path / "a/b/target"
    target.mkdir(parents=True)
    with tarfile.open(archive) as reading:
        reading.extractall(target, filter="fully_trusted")  # what a user would run
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "export.tar.gz"]
    assert [path.name for path in (tmp_path / "a").iterdir()] == ["b"]
    return set(names)


def test_a_crafted_owner_name_corrupts_neither_metadata_nor_export(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
    tmp_path: Path,
) -> None:
    host = register_node(store, home, node, categories=("network", "system"))
    node.write("/usr/local/bin/tar", tar_with_owner(CRAFTED_OWNER), mode=0o755)
    first = take_snapshot(home, store, host)
    assert first.status == "changed", first.error
    assert take_snapshot(home, store, host).status == "unchanged"
    node.sh("echo '10.0.0.9 extra' >> /etc/hosts")  # a change: the metadata is read back
    again = take_snapshot(home, store, host)
    assert again.status == "changed", again.error

    with HostRepository(home.repo_path("pve1")) as repository:
        head = repository.head()
        assert head is not None
        raw = repository.read_file(head, METADATA_PATH)[1]
        tree = repository.file_ids(head)
    infos = parse_metadata(raw)
    assert infos["etc/network/interfaces"].owner == CRAFTED_OWNER
    assert all(clean_relative(path) for path in infos)
    # one line per path: the name never ends a line
    assert len([line for line in raw.split(b"\n") if line and not line.startswith(b"#")]) == len(
        infos
    )
    names = export_and_extract(cli, tmp_path / "export")
    assert all(clean_relative(name) for name in names)
    assert {name for name in names if name in tree} == set(tree)
    assert "../../x" not in names

    node.sh("rm /usr/local/bin/tar")  # owners are real names again: a change, not a failure
    fixed = take_snapshot(home, store, host)
    assert fixed.status == "changed", fixed.error


def test_an_owner_name_with_a_space_from_the_nodes_passwd(
    home: Home, store: Store, node: Node
) -> None:
    host = register_node(store, home, node, categories=("network",))
    node.sh(
        "echo 'evil user:x:4243:4243::/nonexistent:/bin/false' >> /etc/passwd && "
        "echo 'evil group:x:4243:' >> /etc/group && chown 4243:4243 /etc/hosts"
    )
    run = take_snapshot(home, store, host)
    assert run.status == "changed", run.error
    with HostRepository(home.repo_path("pve1")) as repository:
        head = repository.head()
        assert head is not None
        raw = repository.read_file(head, METADATA_PATH)[1]
    assert b'f 0644 "evil user" "evil group" etc/hosts\n' in raw
    hosts = parse_metadata(raw)["etc/hosts"]
    assert (hosts.owner, hosts.group) == ("evil user", "evil group")


def test_an_old_revision_with_a_bad_metadata_line_never_breaks_new_snapshots(
    home: Home, store: Store, node: Node
) -> None:
    host = register_node(store, home, node, categories=("network",))
    assert take_snapshot(home, store, host).status == "changed"
    # What an older pvegit committed for a node whose owner names held newlines.
    with HostRepository(home.repo_path("pve1")) as repository:
        parent = repository.head()
        assert parent is not None
        good = repository.read_file(parent, METADATA_PATH)[1]
    bad = good.replace(
        b"f 0644 root root etc/hosts\n",
        b"f 0644 evil\nd 755 r r ../../x\nf 0 r root etc/hosts\n",
    )
    assert bad != good
    commit_with_metadata(home.repo_path("pve1"), parent, bad)

    run = take_snapshot(home, store, host)
    assert run.status == "changed", run.error  # the metadata is written afresh
    with HostRepository(home.repo_path("pve1")) as repository:
        head = repository.head()
        assert head is not None
        assert repository.read_file(head, METADATA_PATH)[1] == good


def commit_with_metadata(path: Path, parent: str, metadata: bytes) -> None:
    """A commit on ``parent`` with another .pvegit/metadata, written with dulwich directly."""
    from dulwich.repo import Repo

    repo = Repo(str(path))
    try:
        store = repo.object_store
        top = store[store[parent.encode()].tree]
        pvegit = store[top[b".pvegit"][1]]
        blob = Blob.from_string(metadata)
        new_pvegit = Tree()
        for item in pvegit.items():
            new_pvegit.add(item.path, item.mode, item.sha)
        new_pvegit.add(b"metadata", 0o100644, blob.id)
        new_top = Tree()
        for item in top.items():
            new_top.add(item.path, item.mode, item.sha)
        new_top.add(b".pvegit", 0o040000, new_pvegit.id)
        commit = Commit()
        commit.tree = new_top.id
        commit.parents = [parent.encode()]
        commit.author = commit.committer = b"old pvegit <pvegit@example.org>"
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"pve1: 1 file changed: hosts\n"
        for item in (blob, new_pvegit, new_top, commit):
            store.add_object(item)
        repo.refs[b"refs/heads/main"] = commit.id
    finally:
        repo.close()


ESCAPES = "\x1b]0;pwned\x07\x1b[2J"  # set the terminal's title, clear the screen
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J"
HOSTILE_FILE = f"etc/network/interfaces.d/{ESCAPES}.cfg"
# A tar that complains in escape sequences: once about a path, once about nothing known.
TAR_SAYING_ESCAPES = (
    "#!/bin/sh\n"
    "printf 'tar: \\033]0;pwned\\007: Cannot open: Permission denied\\n' >&2\n"
    "printf 'tar: \\033]0;pwned\\007\\033[2J odd\\n' >&2\n"
    'exec /usr/bin/tar "$@"\n'
)
PASSWORD = "correct horse battery"


def assert_inert(text: str, where: str) -> None:
    for character in ("\x1b", "\x07"):
        assert character not in text, f"a raw {character!r} in {where}: {text[:2000]!r}"


def on_a_terminal(*arguments: str) -> str:
    """What `pvegit ...` writes to a real terminal (a pty)."""
    import subprocess
    import sys

    leader, follower = os.openpty()
    try:
        subprocess.run(
            [sys.executable, "-m", "pvegit", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            timeout=120,
            check=False,
        )
    finally:
        os.close(follower)
    output = bytearray()
    try:
        while chunk := os.read(leader, 65536):
            output += chunk
    except OSError:  # EIO: the terminal's other end is closed and everything was read
        pass
    finally:
        os.close(leader)
    return output.decode("utf-8", "replace")


def test_control_characters_from_the_node_never_reach_a_terminal_a_page_or_a_commit(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
) -> None:
    from starlette.testclient import TestClient

    from pvegit.state.credentials import hash_password
    from web.app import create_app

    register_node(store, home, node, categories=("network",))
    node.write(f"/{HOSTILE_FILE}", f"iface {ESCAPES} inet manual\n")
    node.write("/usr/local/bin/tar", TAR_SAYING_ESCAPES, mode=0o755)
    first = cli("snapshot", "pve1")
    assert first.code == 3, first.err  # partial: tar said something it should not
    node.write(f"/{HOSTILE_FILE}", f"iface {ESCAPES} inet dhcp\n")
    second = cli("snapshot", "pve1")
    outputs = {"snapshot": first.out + first.err + second.out + second.err}
    for command in (("log", "pve1"), ("show", "pve1", "HEAD"), ("diff", "pve1"), ("runs",)):
        result = cli(*command)
        assert result.code == 0, result.err
        outputs[" ".join(command)] = result.out + result.err
    for where, text in outputs.items():
        assert_inert(text, f"pvegit {where}")
    assert f"{SHOWN}.cfg" in outputs["show pve1 HEAD"]
    assert f"+iface {SHOWN} inet dhcp" in outputs["diff pve1"]
    assert "odd" in outputs["snapshot"] and SHOWN in outputs["snapshot"]

    shown_file = on_a_terminal("--home", str(home.root), "show", "pve1", f"HEAD:/{HOSTILE_FILE}")
    assert shown_file.strip() == f"iface {SHOWN} inet dhcp"

    with HostRepository(home.repo_path("pve1")) as repository:
        head = repository.head()
        assert head is not None
        messages = [commit.message for commit in repository.log(limit=10)]
    for message in messages:
        assert_inert(message, "a commit message")
    assert any("problem: tar: \\x1b]0;pwned\\x07\\x1b[2J odd" in item for item in messages)

    store.add_user("admin", hash_password(PASSWORD))
    app = create_app(home, Config(concurrency=1), store=store)
    run_id = store.runs("pve1", limit=1)[0].id
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = client.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": "/"},
        )
        assert answer.status_code == 303
        quoted = "etc/network/interfaces.d/%5Cx1b%5D0%3Bpwned%5Cx07%5Cx1b%5B2J.cfg"
        for url in (
            f"/runs/{run_id}",
            "/runs",
            f"/hosts/pve1/commits/{head}",
            f"/hosts/pve1/tree/{head}/etc/network/interfaces.d",
            f"/hosts/pve1/tree/{head}/{quoted}",
            f"/hosts/pve1/history/{quoted}",
            "/hosts/pve1",
        ):
            response = client.get(url)
            assert response.status_code == 200, (url, response.text[:500])
            assert_inert(response.text, url)
        file_page = client.get(f"/hosts/pve1/tree/{head}/{quoted}").text
        assert "iface \\x1b]0;pwned\\x07\\x1b[2J inet dhcp" in file_page
        assert "\\x1b]0;pwned\\x07\\x1b[2J odd" in client.get(f"/runs/{run_id}").text


FORGED = "+\twpa-psk hunter2 (a line forged by a file name)"
FORGING_FILE = f"etc/network/interfaces.d/motd\n{FORGED}\n\x1b[31mred"


def test_a_file_name_forges_no_line_in_a_diff_a_notification_or_a_restore(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
) -> None:
    """A newline in a name from the node stays inside that name on every face that
    writes text of several lines: the diff's header (quoted as git quotes it), the
    notification, the restore's messages and audit entry."""
    from pvegit.service.events import events_for_run
    from pvegit.textsafe import printable

    host = register_node(store, home, node, categories=("network",))
    assert take_snapshot(home, store, host).status == "changed"
    node.write(f"/{FORGING_FILE}", "iface eth9 inet manual\n")
    run = take_snapshot(home, store, host)
    assert run.status == "changed", run.error
    diff = cli("diff", "pve1")
    assert diff.code == 0, diff.err
    quoted = (
        '"b/etc/network/interfaces.d/motd\\n+\\twpa-psk hunter2 (a line forged by a file name)'
        '\\n\\033[31mred"'
    )
    assert f"+++ {quoted}\t\n" in diff.out  # git's quoting (and its tab after a space)
    assert diff.out.splitlines().count("+iface eth9 inet manual") == 1
    assert not any(line.startswith("+\twpa-psk") for line in diff.out.splitlines()), diff.out
    assert_inert(diff.out, "pvegit diff")

    (changed,) = [event for event in events_for_run(home, store, run, retries=0)]
    shown = "/" + printable(FORGING_FILE)
    assert f"added: {shown} (+1 -0)" in changed.message.splitlines()
    assert not any(line.startswith("+\twpa-psk") for line in changed.message.splitlines())

    # Undo it: the restore deletes the file; what it writes down names it on one line.
    restored = cli("restore", "pve1", "HEAD~1", "/etc/network/interfaces.d", "--delete", "--yes")
    assert restored.code == 0, restored.out + restored.err
    assert shown in restored.out and FORGED not in restored.out + restored.err
    assert node.sh("ls /etc/network/interfaces.d").stdout.count("motd") == 0
    (entry,) = store.audit_events(action="restore")
    assert entry.detail["paths"] == shown
    with HostRepository(home.repo_path("pve1")) as repository:
        message = repository.log(limit=1)[0].message
    assert f"Restored-Paths: {shown}" in message.splitlines()
