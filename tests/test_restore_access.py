"""The write side of least privilege, on real sshd nodes (Proxmox's pmxcfs where built):
a restore onto a node whose key only reads needs the restore key's passphrase or root's
password; the restore key itself does nothing but restore."""

from __future__ import annotations

import io
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from pvegit.actions.restore_access import (
    create_restore_key,
    install_restore_access,
    load_restore_key,
    restore_authorized_line,
)
from pvegit.actions.snapshot import take_snapshot
from pvegit.config.home import Home
from pvegit.errors import AuthError
from pvegit.node.restore_program import (
    EXIT_BROKEN_STREAM,
    EXIT_REFUSED,
    PROGRAM_PATH,
    program_sha256,
)
from pvegit.node.ssh import SshTransport
from pvegit.node.transport import OutputLimit
from pvegit.state.store import Host, Store
from testbed.nodes import ROOT_PASSWORD, Node

PASSPHRASE = "correct battery horse staple"
ANSWER = OutputLimit(65536, "a test's answer")


def harden(cli) -> None:  # type: ignore[no-untyped-def]
    """pvegit's key only reads from here on: `pvegit host harden` over the key while it is
    still a root shell installs the collector and the restricted entry."""
    hardened = cli("host", "harden", "pve1")
    assert hardened.code == 0, hardened.out + hardened.err


def root_login(home: Home, host: Host, **how: object) -> SshTransport:
    return SshTransport.connect(home, replace(host, user="root"), **how)  # type: ignore[arg-type]


@pytest.fixture
def hardened(cli, home: Home, store: Store, node: Node, ssh_host: Host, monkeypatch):  # type: ignore[no-untyped-def]
    """pve1 snapshotted, then hardened, with a restore key installed."""
    assert take_snapshot(home, store, ssh_host).status == "changed"
    harden(cli)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSPHRASE + "\n"))
    assert cli("restore-key", "create", "--passphrase-stdin").code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(ROOT_PASSWORD + "\n"))
    installed = cli("restore-key", "install", "pve1", "--password-stdin")
    assert installed.code == 0, installed.err
    # The cluster-wide file: the entry is valid on every node of the cluster.
    assert "/etc/pve/priv/authorized_keys" in installed.out
    return ssh_host


def test_a_hardened_node_needs_the_second_credential(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
    hardened: Host,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = node.read("/etc/pve/storage.cfg")
    node.write("/etc/pve/storage.cfg", "dir: broken\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    without = cli("restore", "pve1", "HEAD", "/etc/pve/storage.cfg", "--yes")
    assert without.code == 1
    assert "only reads" in without.err and "--passphrase-stdin" in without.err
    assert "--root-password" in without.err and "Nothing was written" in without.err
    assert node.read("/etc/pve/storage.cfg") == "dir: broken\n"
    assert store.audit_events(action="restore") == []  # refused before anything started

    monkeypatch.setattr("sys.stdin", io.StringIO("not the passphrase\n"))
    wrong = cli("restore", "pve1", "HEAD", "/etc/pve/storage.cfg", "--yes", "--passphrase-stdin")
    assert wrong.code == 1 and "wrong passphrase for the restore key" in wrong.err
    assert node.read("/etc/pve/storage.cfg") == "dir: broken\n"

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSPHRASE + "\n"))
    done = cli("restore", "pve1", "HEAD", "/etc/pve/storage.cfg", "--yes", "--passphrase-stdin")
    assert done.code == 0, done.out + done.err
    assert "verified: the node now matches the revision" in done.out
    assert node.read("/etc/pve/storage.cfg") == original
    entry = store.audit_events(action="restore")[0]
    assert entry.state == "completed" and entry.detail["access"] == "restore key"

    node.write("/root/.ssh/config", "Host changed\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(ROOT_PASSWORD + "\n"))
    by_root = cli(
        "restore", "pve1", "HEAD~2", "/root/.ssh/config", "--yes", "--root-password-stdin"
    )
    assert by_root.code == 0, by_root.out + by_root.err
    assert "Host changed" not in node.read("/root/.ssh/config")
    assert store.audit_events(action="restore")[0].detail["access"] == "root password"
    log = node.read("/var/log/pvegit-restore.log")
    assert "restore started" in log and "restore ended: 1 change(s), failed=0" in log

    # Neither secret is kept anywhere pvegit writes.
    for secret in (PASSPHRASE, ROOT_PASSWORD):
        for path in home.root.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        assert secret not in done.out + done.err + by_root.out + by_root.err


def test_without_a_restore_key_the_message_says_how_to_make_one(
    cli, home: Home, store: Store, node: Node, ssh_host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    take_snapshot(home, store, ssh_host)
    harden(cli)
    node.write("/etc/hosts", "10.9.9.9 broken\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    result = cli("restore", "pve1", "HEAD", "/etc/hosts", "--yes")
    assert result.code == 1
    assert "pvegit restore-key create" in result.err
    assert "pvegit restore-key install pve1" in result.err
    assert node.read("/etc/hosts") == "10.9.9.9 broken\n"
    # Installing it needs a root login, which pvegit's key no longer is.
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSPHRASE + "\n"))
    assert cli("restore-key", "create", "--passphrase-stdin").code == 0
    install = cli("restore-key", "install", "pve1")
    assert install.code == 1 and "--root-password" in install.err, install.err
    assert "pvegit-restore" not in node.read("/etc/pve/priv/authorized_keys")


def test_the_restore_key_restores_and_does_nothing_else(
    home: Home, node: Node, hardened: Host
) -> None:
    login = root_login(home, hardened, key=load_restore_key(home, PASSPHRASE))
    try:
        version = login.run("pvegit version 1", limit=ANSWER)
        assert version.stdout.decode().split() == ["pvegit-restore", "1", program_sha256(), "0"]
        for command in (
            "id",
            "",
            "cat /etc/shadow",
            "sh -i",
            "pvegit restore 1; id",
            "pvegit restore 1 $(id)",
            "pvegit collect 1",
            "pvegit version 2",
        ):
            refused = login.run(command, limit=ANSWER)
            assert refused.exit_code == EXIT_REFUSED, command
            assert refused.stdout == b"", command
            assert b"pvegit-restore: refused" in refused.stderr, command
        # No port forwarding, no pty (restrict).
        with pytest.raises(paramiko.ChannelException):
            login._transport.open_channel("direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 0))
        channel = login._transport.open_session()
        with pytest.raises(paramiko.SSHException):
            channel.get_pty()
        channel.close()
        # Crafted streams: outside the roots, climbing out, pvegit's own access.
        for path in ("../etc/shadow", "etc/../../tmp/x", "/etc/hosts", "home/evil", "-rf"):
            record = f"write 0 0644 root root 8 {len(path)}\n{path}\ncHduZA==\n"
            stream = f"pvegit-restore-stream 1\n{record}end\n"
            crafted = login.run("pvegit restore 1", stream.encode(), limit=ANSWER)
            assert crafted.exit_code == EXIT_BROKEN_STREAM, path
            assert b"path not allowed" in crafted.stderr, path
        for path in ("root/.ssh/authorized_keys", "usr/local/sbin/pvegit-restore"):
            stream = f"pvegit-restore-stream 1\ndelete 0 {len(path)}\n{path}\nend\n"
            crafted = login.run("pvegit restore 1", stream.encode(), limit=ANSWER)
            assert crafted.exit_code == EXIT_BROKEN_STREAM, path
    finally:
        login.close()
    assert node.sh(f"test -x {PROGRAM_PATH}", check=False).returncode == 0
    assert "restrict,command=" in node.read("/etc/pve/priv/authorized_keys")
    assert node.sh("ls /tmp/x /home/evil", check=False).returncode != 0
    log = node.read("/var/log/pvegit-restore.log")
    assert "refused (not a pvegit-restore request" in log and 'asked "id"' in log
    assert "path not allowed: ../etc/shadow" in log


def test_a_copy_of_the_home_without_the_passphrase_cannot_write(
    home: Home, store: Store, node: Node, hardened: Host, tmp_path: Path
) -> None:
    stolen = Home(tmp_path / "stolen")
    shutil.copytree(home.root, stolen.root)
    key_text = stolen.restore_key_path.read_text()
    assert "OPENSSH PRIVATE KEY" in key_text
    # The key does not load without the passphrase (nor with a guess).
    for guess in (None, "", "pvegit", "password"):
        with pytest.raises(paramiko.SSHException):
            paramiko.Ed25519Key.from_private_key(io.StringIO(key_text), password=guess)
    with pytest.raises(AuthError, match="wrong passphrase"):
        load_restore_key(stolen, "guess")
    # pvegit's key from the copy reads, but cannot write: the program sent inline and
    # a plain shell command are refused.
    stolen_store = Store(stolen.state_path)
    try:
        host = stolen_store.host("pve1")
        reader = SshTransport.connect(stolen, host)
        try:
            from pvegit.node.restore_program import inline_command

            write = reader.run(inline_command("restore"), b"", limit=ANSWER)
            assert write.exit_code != 0
        finally:
            reader.close()
        # Nor does the copy log in as root any other way.
        with pytest.raises(AuthError):
            root_login(stolen, host, password="not root's password")
    finally:
        stolen_store.close()
    # Nothing in the copy holds the passphrase.
    for path in stolen.root.rglob("*"):
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path
    assert store.audit_events(action="restore") == []


def test_installing_is_idempotent_and_replaces_an_old_entry(
    home: Home, node: Node, ssh_host: Host
) -> None:
    create_restore_key(home, PASSPHRASE)
    line = restore_authorized_line(home)
    assert line is not None and line.startswith(
        'restrict,command="/usr/local/sbin/pvegit-restore" '
    )
    blob = line.split()[2]
    node.sh(f"echo 'ssh-ed25519 {blob} an-old-unrestricted-entry' >> /root/.ssh/authorized_keys")
    node.write(PROGRAM_PATH, "#!/bin/sh\necho an old program\n", mode=0o755)
    login = root_login(home, ssh_host, password=ROOT_PASSWORD)
    try:
        for _ in range(2):
            assert install_restore_access(login, home) == "/etc/pve/priv/authorized_keys"
    finally:
        login.close()
    keys = node.read("/etc/pve/priv/authorized_keys")
    assert keys.count(blob) == 1 and line in keys
    assert home.public_key() in keys  # pvegit's key untouched
    assert node.sh(f"sha256sum < {PROGRAM_PATH}").stdout.split()[0] == program_sha256()


def test_an_outdated_program_on_the_node_is_named(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    node: Node,
    hardened: Host,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node.sh(f"echo '# changed' >> {PROGRAM_PATH}")
    node.write("/etc/hosts", "10.9.9.9 broken\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSPHRASE + "\n"))
    result = cli("restore", "pve1", "HEAD", "/etc/hosts", "--yes", "--passphrase-stdin")
    assert result.code == 1
    assert "is not the one this pvegit ships" in result.err
    assert "pvegit restore-key install pve1" in result.err
    assert node.read("/etc/hosts") == "10.9.9.9 broken\n"


def test_the_web_form_asks_for_the_passphrase_and_keeps_it_nowhere(
    home: Home, store: Store, node: Node, hardened: Host
) -> None:
    import re

    from starlette.testclient import TestClient

    from pvegit.config.file import Config
    from pvegit.config.roles import OPERATOR
    from pvegit.state.credentials import hash_password
    from web.app import create_app

    store.add_user("admin", hash_password("admin password 1"))
    store.add_user("olivia", hash_password("operator password 1"), OPERATOR)
    node.write("/etc/hosts", "10.9.9.9 broken\n")
    app = create_app(home, Config(concurrency=2), store=store)

    def csrf(html: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match
        return match.group(1)

    def log_in(client: TestClient, name: str, password: str) -> dict[str, str]:
        page = client.get("/login")
        client.post(
            "/login",
            data={"username": name, "password": password, "csrf_token": csrf(page.text)},
        )
        token = csrf(client.get("/hosts/pve1/restore").text)
        return {"commit": "HEAD", "paths": "/etc/hosts", "csrf_token": token}

    with TestClient(app, follow_redirects=False) as operator:
        form = log_in(operator, "olivia", "operator password 1")
        preview = operator.post("/hosts/pve1/restore/preview", data=form)
        assert "change" in preview.text and "restore_passphrase" not in preview.text
        assert "Writing it is for an admin" in preview.text
    with TestClient(app, follow_redirects=False) as client:
        form = log_in(client, "admin", "admin password 1")
        preview = client.post("/hosts/pve1/restore/preview", data=form)
        assert 'name="restore_passphrase" type="password"' in preview.text
        assert 'name="root_password" type="password"' in preview.text
        refused = client.post("/hosts/pve1/restore", data={**form, "confirm": "yes"})
        assert refused.status_code == 400 and "only reads" in refused.text
        wrong = client.post(
            "/hosts/pve1/restore",
            data={**form, "confirm": "yes", "restore_passphrase": "nope nope nope"},
        )
        assert "wrong passphrase" in wrong.text and "nope nope nope" not in wrong.text
        done = client.post(
            "/hosts/pve1/restore",
            data={**form, "confirm": "yes", "restore_passphrase": PASSPHRASE},
        )
        assert done.status_code == 200 and "Restored and verified" in done.text, done.text
        assert PASSPHRASE not in done.text
        assert "10.9.9.9 broken" not in node.read("/etc/hosts")

        # Root's password instead of the passphrase: one restore, then forgotten.
        node.write("/etc/hosts", "10.9.9.9 broken again\n")
        form = log_in(client, "admin", "admin password 1")
        client.post("/hosts/pve1/restore/preview", data=form)
        wrong = client.post(
            "/hosts/pve1/restore",
            data={**form, "confirm": "yes", "root_password": "not root's password"},
        )
        assert wrong.status_code != 200 or "Restored and verified" not in wrong.text
        assert "not root&#39;s password" not in wrong.text
        assert "broken again" in node.read("/etc/hosts")
        done = client.post(
            "/hosts/pve1/restore",
            data={**form, "confirm": "yes", "root_password": ROOT_PASSWORD},
        )
        assert done.status_code == 200 and "Restored and verified" in done.text, done.text
        assert ROOT_PASSWORD not in done.text
    assert "10.9.9.9 broken" not in node.read("/etc/hosts")
    database = sqlite3.connect(home.state_path)
    try:
        dump = "\n".join(database.iterdump())
    finally:
        database.close()
    assert PASSPHRASE not in dump and "nope nope nope" not in dump
    assert ROOT_PASSWORD not in dump
    for path in home.root.rglob("*"):
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path
            assert ROOT_PASSWORD.encode() not in path.read_bytes(), path


def test_the_stream_carries_any_name_and_content(tmp_path: Path) -> None:
    """Names with line breaks, trailing newlines and spaces, binary content, links and
    deletions, through the program below a local root (the same text as on a node)."""
    import os

    from pvegit.node.restore_program import Change, RestoreChannel, encode_stream, reply_limit
    from pvegit.node.transport import LocalTransport

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/gone").write_text("old\n")
    changes = [
        Change(0, "write", "etc/a\nb", b"first\n", mode=0o640, owner="root", group="root"),
        Change(1, "write", "etc/trailing\n", bytes(range(256)), mode=0o600, owner="no body"),
        Change(2, "write", "etc/sub dir/ x ", b"", mode=None),
        Change(5, "write", "etc/dir\n/file", b"in a directory with a line break\n"),
        Change(3, "link", "etc/link", b"target with\nbreak\n"),
        Change(4, "delete", "etc/gone"),
    ]
    channel = RestoreChannel(LocalTransport(str(root)), inline=True, owned=True, how="local")
    try:
        result = channel.call(
            "restore", encode_stream(changes, pmxcfs=False), limit=reply_limit(len(changes))
        )
    finally:
        channel.close()
    assert result.exit_code == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        f"pvegit-restore ok {n}" for n in (0, 1, 2, 5, 3, 4)
    ]
    assert (root / "etc/a\nb").read_bytes() == b"first\n"
    assert (root / "etc/a\nb").stat().st_mode & 0o777 == 0o640
    assert (root / "etc/trailing\n").read_bytes() == bytes(range(256))
    assert (root / "etc/sub dir/ x ").read_bytes() == b""
    assert os.readlink(root / "etc/link") == "target with\nbreak\n"
    assert not (root / "etc/gone").exists()
    assert (root / "etc/dir\n/file").read_bytes() == b"in a directory with a line break\n"
    assert not (root / "etc/dir").exists()
    assert not list(root.rglob(".pvegit-restore.*"))


def test_on_a_terminal_the_passphrase_is_asked_when_the_node_needs_it(
    home: Home, node: Node, hardened: Host
) -> None:
    """`pvegit restore` without a credential option: asked (not echoed) on the terminal."""
    import os
    import pty
    import select
    import sys
    import time

    node.write("/etc/hosts", "10.9.9.9 broken\n")
    command = [sys.executable, "-m", "pvegit", "--home", str(home.root)]
    command += ["restore", "pve1", "HEAD", "/etc/hosts", "--yes"]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: pvegit on its controlling terminal
        os.execv(sys.executable, command)
    said = b""

    def wait_for(text: bytes) -> None:
        nonlocal said
        deadline = time.monotonic() + 120
        while text not in said:
            left = deadline - time.monotonic()
            assert left > 0, said.decode("utf-8", "replace")
            if select.select([terminal], [], [], left)[0]:
                try:
                    chunk = os.read(terminal, 4096)
                except OSError:  # the child ended
                    chunk = b""
                assert chunk, said.decode("utf-8", "replace")
                said += chunk

    try:
        wait_for(b"restore key passphrase: ")
        os.write(terminal, PASSPHRASE.encode() + b"\n")
        wait_for(b"verified: the node now matches the revision")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0, said.decode("utf-8", "replace")
    assert b"only reads" in said and PASSPHRASE.encode() not in said  # not echoed
    assert "10.9.9.9 broken" not in node.read("/etc/hosts")


def test_a_host_read_by_a_backup_user_is_restored_as_root_with_the_restore_key(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pvegit reads as `pvebackup` (group www-data); the restore key logs in as root."""
    from testbed.nodes import register_node

    host = register_node(store, home, node, "pve1", user="pvebackup", categories=("cluster",))
    assert take_snapshot(home, store, host).status in ("changed", "partial")
    original = node.read("/etc/pve/storage.cfg")
    node.write("/etc/pve/storage.cfg", "dir: broken\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSPHRASE + "\n"))
    assert cli("restore-key", "create", "--passphrase-stdin").code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(ROOT_PASSWORD + "\n"))
    assert cli("restore-key", "install", "pve1", "--password-stdin").code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    refused = cli("restore", "pve1", "HEAD", "/etc/pve/storage.cfg", "--yes")
    assert refused.code == 1 and "only reads" in refused.err  # pvebackup is no root shell
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSPHRASE + "\n"))
    done = cli("restore", "pve1", "HEAD", "/etc/pve/storage.cfg", "--yes", "--passphrase-stdin")
    assert done.code == 0, done.out + done.err
    assert node.read("/etc/pve/storage.cfg") == original
