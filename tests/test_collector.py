"""The read-only collect key on real sshd nodes: what it can read, and everything it cannot do.

A host is hardened over its unrestricted key (pvegit host harden); from then
on the key runs only /usr/local/sbin/pvegit-collect. Snapshots, inventory,
config.db, verify and restore's reads go through it; a command, a shell, a
port forward and crafted requests are refused and logged on the node.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import paramiko
import pytest
from starlette.testclient import TestClient
from test_web import PASSWORD, login

from pvegit.actions.harden import PasswordNeeded, harden_host
from pvegit.actions.restore_write import read_live
from pvegit.actions.snapshot import take_snapshot
from pvegit.actions.verify import verify_host
from pvegit.config.file import Config
from pvegit.config.home import Home
from pvegit.config.selection import resolve_selection
from pvegit.git.repo import HostRepository
from pvegit.node.allowlist import ALLOW_PATH, allow_list_text
from pvegit.node.program import INSTALLED_PATH, LOG_FILE, program_digest
from pvegit.node.ssh import SshTransport
from pvegit.node.transport import MiB, OutputLimit
from pvegit.state.credentials import hash_password
from pvegit.state.store import Host, Store
from testbed.appserver import pvegit_process
from testbed.nodes import ROOT_PASSWORD, Node
from web.app import create_app

pytestmark = pytest.mark.usefixtures("testbed")
_LIMIT = OutputLimit(MiB, "a test's answer")


@pytest.fixture
def hardened(home: Home, store: Store, ssh_host: Host) -> Host:
    done = harden_host(home, store, ssh_host, actor="test")
    assert done.access == "restricted"
    assert done.written == "/etc/pve/priv/authorized_keys" and done.cluster_wide
    return store.host(ssh_host.name)


@dataclass
class Answer:
    code: int
    stdout: bytes
    stderr: bytes


@pytest.fixture
def raw(home: Home, node: Node) -> Iterator[paramiko.Transport]:
    """A bare SSH login with pvegit's key, to try what an attacker holding it would."""
    sock = socket.create_connection((node.address, node.port), timeout=10)
    transport = paramiko.Transport(sock)
    transport.start_client(timeout=10)
    transport.auth_publickey("root", paramiko.PKey.from_path(str(home.private_key_path)))
    yield transport
    transport.close()


def ask(transport: paramiko.Transport, command: str, stdin: bytes = b"") -> Answer:
    channel = transport.open_session(timeout=10)
    channel.settimeout(20)
    channel.exec_command(command)
    channel.sendall(stdin)
    channel.shutdown_write()
    stdout = channel.makefile("rb").read()
    stderr = channel.makefile_stderr("rb").read()
    return Answer(channel.recv_exit_status(), stdout, stderr)


def test_a_hardened_host_is_snapshotted_through_the_collector(
    home: Home, store: Store, node: Node, hardened: Host
) -> None:
    keys = node.read("/etc/pve/priv/authorized_keys")
    assert f'restrict,command="{INSTALLED_PATH}" {home.public_key()}' in keys
    assert keys.count(home.public_key().split()[1]) == 1  # the unrestricted line is gone
    installed = node.sh(f"sha256sum {INSTALLED_PATH}").stdout.split()[0]
    assert installed == program_digest()

    run = take_snapshot(home, store, hardened)
    assert run.status == "changed", run.error
    assert store.host(hardened.name).access == "restricted"
    verified = verify_host(home, store, hardened)
    assert verified.problems == [] and verified.node_checked > 10, verified
    with HostRepository(home.repo_path(hardened.name)) as repository:
        files = {entry.path for entry in repository.iter_files(repository.head())}
    assert "etc/pve/storage.cfg" in files and "etc/network/interfaces" in files
    assert ".pvegit/inventory/pveversion.txt" in files
    assert "etc/pve/priv/authorized_keys" not in files  # a secret, not chosen
    assert not {"etc/shadow", "etc/gshadow"} & files

    # The node's allow-list is the host's selection: root's, written at harden time.
    assert node.sh(f"stat -c '%u %a' {ALLOW_PATH}").stdout.split() == ["0", "644"]
    selection = resolve_selection(hardened.categories, hardened.includes, hardened.excludes)
    assert node.read(ALLOW_PATH) == allow_list_text(selection)
    printed = pvegit_process(home, "host", "allow-list", "pve1")  # for a node set up by hand
    assert printed.returncode == 0 and printed.stdout == node.read(ALLOW_PATH)
    shown = json.loads(pvegit_process(home, "host", "show", "pve1", "--json").stdout)
    assert (shown["access"], shown["allow_list"]) == ("restricted", "current")

    # A category added in pvegit is not readable until root lets the node follow.
    chosen = (*hardened.categories, "configdb")
    asked = [word for name in chosen for word in ("--category", name)]
    edited = pvegit_process(home, "host", "edit", "pve1", *asked)
    assert edited.returncode == 0, edited.stderr
    assert (
        "note: the node's allow-list" in edited.stdout
        and "pvegit host harden pve1" in edited.stdout
    )
    run = take_snapshot(home, store, store.host(hardened.name))
    assert run.status == "failed"
    assert "var/lib/pve-cluster/config.db (not on this node's allow-list" in (run.error or "")
    assert "pvegit host harden pve1 (with root's password" in (run.error or "")
    assert "allow-list:" in pvegit_process(home, "host", "show", "pve1").stdout
    listed = json.loads(pvegit_process(home, "host", "list", "--json").stdout)
    assert listed[0]["allow_list"] == "stale"
    with pytest.raises(PasswordNeeded, match="allow-list"):  # the collect key cannot write it
        harden_host(home, store, store.host(hardened.name), actor="test")
    harden_host(home, store, store.host(hardened.name), password=ROOT_PASSWORD, actor="test")
    assert "allow-list:" not in pvegit_process(home, "host", "show", "pve1").stdout
    run = take_snapshot(home, store, store.host(hardened.name))
    assert run.status == "changed", run.error
    with HostRepository(home.repo_path(hardened.name)) as repository:
        files = {entry.path for entry in repository.iter_files(repository.head())}
    assert "var/lib/pve-cluster/config.db" in files  # the consistent .backup
    # A .backup copy is never the live file's bytes: verify does not call it damage.
    verified = verify_host(home, store, store.host(hardened.name))
    assert verified.problems == [] and verified.node_checked > 10, verified

    transport = SshTransport.connect(home, hardened)
    try:
        live = read_live(transport, ["etc/hosts", "etc/pve/storage.cfg"])
    finally:
        transport.close()
    assert set(live) == {"etc/hosts", "etc/pve/storage.cfg"}
    # A restore of all of /etc reads what the node's list holds below it, nothing else.
    host = store.host(hardened.name)
    selection = resolve_selection(host.categories, host.includes, host.excludes)
    transport = SshTransport.connect(home, host)
    try:
        live = read_live(transport, ["etc"], selection)
    finally:
        transport.close()
    assert {"etc/hosts", "etc/pve/storage.cfg", "etc/network/interfaces"} <= set(live)
    assert not {"etc/passwd", "etc/pve/priv/authkey.key"} & set(live)


def test_the_collect_key_runs_no_command_no_shell_and_forwards_no_port(
    node: Node, hardened: Host, raw: paramiko.Transport
) -> None:
    for command in ("id", "sh -c id", "cat /etc/shadow", "pvegit collect 1 ; id"):
        answer = ask(raw, command)
        assert answer.code == 96, (command, answer)
        assert answer.stdout == b""
        assert b"pvegit-collect: refused: not a pvegit request" in answer.stderr
    # A shell with a terminal: `restrict` gives no pty, the collector gets no request.
    channel = raw.open_session(timeout=10)
    with pytest.raises(paramiko.SSHException):
        channel.get_pty()
    channel = raw.open_session(timeout=10)
    channel.invoke_shell()
    channel.sendall(b"id\n")
    channel.shutdown_write()
    assert channel.recv_exit_status() == 96
    assert b"uid=" not in channel.makefile("rb").read()
    # -L: a port forward through the node.
    with pytest.raises(paramiko.ChannelException):
        raw.open_channel("direct-tcpip", (node.address, node.port), ("127.0.0.1", 40000))
    log = node.read(LOG_FILE)
    assert "refused: not a pvegit request: id" in log
    assert "refused: no request" in log  # the shell


def test_crafted_requests_are_refused_and_logged(
    node: Node, hardened: Host, raw: paramiko.Transport
) -> None:
    crafted = [
        ("pvegit collect 1", b"path ../etc/shadow\n"),
        ("pvegit collect 1", b"path etc/../etc/shadow\n"),
        ("pvegit collect 1", b"path /etc/shadow\n"),
        ("pvegit collect 1", b"path etc/shadow\n"),
        ("pvegit collect 1", b"path etc/shad*\n"),  # a glob reaching it
        ("pvegit collect 1", b"path home/pvebackup\n"),  # outside the roots
        ("pvegit collect 1", b"path -C/ etc\n"),
        ("pvegit collect 1", b"path etc/hosts$(touch /tmp/pwned)\n"),
        ("pvegit collect 1", b"path etc/hosts;touch /tmp/pwned\n"),
        ("pvegit collect 1", b"root /home\npath etc\n"),
        ("pvegit collect 1", b"exclude -x\npath etc/hosts\n"),
        ("pvegit inventory 1", b"boundary b\nkeep 10\ncommand touch /tmp/pwned\n"),
        ("pvegit inventory 1", b"boundary $(touch /tmp/pwned)\nkeep 10\n"),
        ("pvegit collect 1 etc/shadow", b""),
        ("pvegit collect 2", b""),
        ("pvegit  collect 1", b""),
        ("pvegit collect 1\nid", b""),
    ]
    for command, stdin in crafted:
        answer = ask(raw, command, stdin)
        assert answer.code == 96, (command, stdin, answer)
        assert b"pvegit-collect: refused" in answer.stderr
        assert b"root:" not in answer.stdout
    # A symlink planted where the collector reads leads it nowhere new.
    node.sh("ln -s /etc/shadow /etc/network/shadow-link && mkdir -p /etc/x && ln -s / /etc/x/up")
    assert ask(raw, "pvegit collect 1", b"path etc/x/up/etc/shadow\n").code == 96
    answer = ask(raw, "pvegit checksums 1", b"root /\netc/shadow\0etc/x/up/etc/shadow\0etc/hosts\0")
    assert answer.code == 0 and b"shadow" not in answer.stdout and b"etc/hosts" in answer.stdout
    assert node.sh("test -e /tmp/pwned", check=False).returncode == 1
    log = node.read(LOG_FILE)
    assert "refused: path not allowed: ../etc/shadow" in log
    assert "refused: etc/shadow" in log
    assert "refused: not a pvegit request: pvegit collect 2" in log


def test_a_changed_or_missing_collector_is_reported_with_what_to_run(
    home: Home, store: Store, node: Node, hardened: Host
) -> None:
    node.sh(f"echo '# changed' >> {INSTALLED_PATH}")
    run = take_snapshot(home, store, hardened)
    assert run.status == "failed"
    assert "is not the one this pvegit ships" in (run.error or "")
    assert "pvegit host harden pve1" in (run.error or "")
    with pytest.raises(PasswordNeeded):  # the key cannot repair it: it opens no shell
        harden_host(home, store, hardened, actor="test")
    harden_host(home, store, hardened, password=ROOT_PASSWORD, actor="test")
    assert take_snapshot(home, store, hardened).status == "changed"

    node.sh(f"rm {INSTALLED_PATH}")
    run = take_snapshot(home, store, hardened)
    assert run.status == "failed"
    assert "which is not installed there" in (run.error or "")


def test_an_unrestricted_host_is_flagged_and_the_cli_hardens_it(
    home: Home, store: Store, node: Node, ssh_host: Host
) -> None:
    assert take_snapshot(home, store, ssh_host).status == "changed"
    assert store.host("pve1").access == "unrestricted"
    shown = pvegit_process(home, "host", "show", "pve1")
    assert "UNRESTRICTED" in shown.stdout and "pvegit host harden pve1" in shown.stdout
    tested = pvegit_process(home, "host", "test", "pve1", timeout=60)
    assert tested.returncode == 0 and "warn access: UNRESTRICTED" in tested.stdout

    hardened = pvegit_process(home, "host", "harden", "pve1", timeout=60)
    assert hardened.returncode == 0, hardened.stderr
    assert "hardened pve1: rewrote /etc/pve/priv/authorized_keys" in hardened.stdout
    assert "every node of this cluster" in hardened.stdout
    assert store.host("pve1").access == "restricted"
    again = pvegit_process(home, "host", "harden", "pve1", timeout=60)
    assert "already restricted" in again.stdout
    listed = pvegit_process(home, "host", "list", "--json")
    assert '"access": "restricted"' in listed.stdout
    tested = pvegit_process(home, "host", "test", "pve1", timeout=60)
    assert tested.returncode == 0, tested.stdout
    assert "ok   access: restricted" in tested.stdout
    assert "pmxcfs: /etc/pve is served" in tested.stdout


def test_the_web_flags_an_unrestricted_host_and_an_admin_hardens_it(
    home: Home, store: Store, node: Node, ssh_host: Host
) -> None:
    store.add_user("admin", hash_password(PASSWORD))
    store.add_user("operator", hash_password(PASSWORD), role="operator")
    assert take_snapshot(home, store, ssh_host).status == "changed"
    app = create_app(home, Config(concurrency=2), store=store)
    with TestClient(app, follow_redirects=False) as client:
        token = login(client, "operator", PASSWORD)
        dashboard = client.get("/").text
        assert "Unrestricted key: pvegit's key opens a root shell on" in dashboard
        assert "pvegit host harden NAME" in dashboard
        page = client.get("/hosts/pve1").text
        assert "UNRESTRICTED: pvegit&#39;s key opens a root shell" in page
        assert "Make the key read-only" not in page  # an admin's button
        denied = client.post("/hosts/pve1/harden", data={"csrf_token": token})
        assert denied.status_code == 403
        client.post("/logout", data={"csrf_token": token})

        token = login(client, "admin", PASSWORD)
        assert "Make the key read-only" in client.get("/hosts/pve1").text
        forged = client.post("/hosts/pve1/harden", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        done = client.post("/hosts/pve1/harden", data={"csrf_token": token})
        assert done.status_code == 303, done.text
        page = client.get("/hosts/pve1").text
        assert "restricted: pvegit&#39;s key can only run the read-only collector" in page
        assert "Make the key read-only" not in page
        assert "Unrestricted key" not in client.get("/").text
        assert "Allow-list:" not in page

        # Categories changed: the node keeps to its list until root's password is given.
        store.update_host("pve1", categories=(*ssh_host.categories, "secrets"))
        page = client.get("/hosts/pve1").text
        assert "Allow-list:</strong> the node&#39;s allow-list" in page
        assert "Allow-list not this host's selection on" in client.get("/").text
        assert "Rewrite the node&#39;s allow-list" in page
        done = client.post(
            "/hosts/pve1/harden", data={"csrf_token": token, "password": ROOT_PASSWORD}
        )
        assert done.status_code == 303, done.text
        assert "Allow-list:" not in client.get("/hosts/pve1").text
        assert "Allow-list not" not in client.get("/").text
    assert store.host("pve1").access == "restricted"
    assert 'restrict,command="' in node.read("/etc/pve/priv/authorized_keys")
    entries = store.audit_events(action="host hardened")  # made read-only, list rewritten
    assert [entry.actor for entry in entries] == ["admin", "admin"]


def test_a_backup_user_with_the_restricted_entry_reads_what_it_may(
    home: Home, store: Store, node: Node, hardened: Host
) -> None:
    from dataclasses import replace

    from pvegit.actions.harden import collect_authorized_line

    node.authorize(collect_authorized_line(home), "pvebackup")
    node.sh("touch /var/log/pvegit-collect.log && chown pvebackup /var/log/pvegit-collect.log")
    backup = store.add_host(replace(hardened, name="pve1-backup", user="pvebackup", access=""))
    run = take_snapshot(home, store, backup)
    assert run.status in ("changed", "partial"), run.error
    assert store.host("pve1-backup").access == "restricted-user"
    with HostRepository(home.repo_path(backup.name)) as repository:
        files = {entry.path for entry in repository.iter_files(repository.head())}
    assert "etc/pve/storage.cfg" in files and "etc/network/interfaces" in files
    transport = SshTransport.connect(home, backup)
    try:
        assert transport.run("id", limit=_LIMIT).exit_code == 96
    finally:
        transport.close()
    assert "refused: not a pvegit request: id" in node.read(LOG_FILE)


def test_a_backup_user_with_sudo_for_the_collector_alone_reads_root_only_files(
    home: Home, store: Store, node: Node, hardened: Host
) -> None:
    if shutil.which("sudo") is None:  # CI installs it (.ci/run, make deps): never skipped there
        if os.environ.get("PVEGIT_REQUIRE_SSHD"):
            pytest.fail("PVEGIT_REQUIRE_SSHD is set but sudo is not installed")
        pytest.skip("sudo is not installed here")
    from dataclasses import replace

    from pvegit.actions.harden import collect_authorized_line

    node.authorize(collect_authorized_line(home), "pvebackup")
    node.sh("touch /var/log/pvegit-collect.log && chown pvebackup /var/log/pvegit-collect.log")
    node.write("/etc/sudoers.d/pvegit", f"pvebackup ALL=(root) NOPASSWD: {INSTALLED_PATH}\n", 0o440)
    chosen = (*hardened.categories, "secrets")
    # The node's allow-list follows the secrets only when root says so.
    with_secrets = store.update_host(hardened.name, categories=chosen)
    harden_host(home, store, with_secrets, password=ROOT_PASSWORD, actor="test")
    backup = store.add_host(
        replace(hardened, name="pve1-backup", user="pvebackup", categories=chosen, access="")
    )
    run = take_snapshot(home, store, backup)
    assert run.status == "changed", (run.error, run.warnings)
    assert store.host("pve1-backup").access == "restricted-user"
    with HostRepository(home.repo_path(backup.name)) as repository:
        files = {entry.path for entry in repository.iter_files(repository.head())}
    assert "etc/pve/priv/authkey.key" in files or "etc/ssh/ssh_host_ed25519_key" in files
    assert "etc/pve/priv/shadow.cfg" in files  # root-only: read through sudo
    assert not {"etc/shadow", "etc/gshadow"} & files
    # Through sudo the collector still refuses what is not a request, and its roots hold.
    transport = SshTransport.connect(home, backup)
    try:
        assert transport.run("sudo -n id", limit=_LIMIT).exit_code == 96
        asked = transport.run("pvegit collect 1", b"path etc/shadow\n", limit=_LIMIT)
        assert asked.exit_code == 96 and b"refused: etc/shadow" in asked.stderr
    finally:
        transport.close()


def _members(answer: Answer) -> set[str]:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(answer.stdout), mode="r|") as archive:
        return {member.name for member in archive}


def test_a_copy_of_the_home_reads_nothing_the_repositories_do_not_hold(
    home: Home, store: Store, node: Node, hardened: Host, raw: paramiko.Transport
) -> None:
    """The collect key, used by hand as an attacker holding $PVEGIT_HOME would: the node
    sends only what the host's selection collects (no secrets, no config.db here)."""
    pve = ask(
        raw,
        "pvegit collect 1",
        b"path etc/pve\npath etc/ssh/sshd_config\npath etc/ssh/ssh_host_*_key.pub\n"
        b"path root/.ssh\n",
    )
    assert pve.code == 0, pve.stderr
    members = _members(pve)
    assert "etc/pve/storage.cfg" in members and "etc/ssh/sshd_config" in members
    secret = {"etc/pve/priv", "etc/pve/priv/authkey.key", "etc/pve/priv/shadow.cfg"}
    assert not secret & members
    assert not any(name.endswith((".key", "_key")) for name in members), members
    assert not any(name.startswith("root/.ssh/id_") for name in members), members
    node.sh("mkdir -p /root/.ssh && echo k > /root/.ssh/id_ed25519")
    for request in (
        b"path etc/pve/priv\n",  # below a listed path, but excluded: nothing read
        b"path etc/pve/priv/authkey.key\n",
        b"path etc/pve/local/pve-ssl.key\n",  # a secret through pmxcfs's own link
        b"path etc/ssh/ssh_host_ed25519_key\n",
        b"path root/.ssh/id_ed25519\n",
    ):
        answer = ask(raw, "pvegit collect 1", request)  # refused, or skipped: never read
        assert answer.code in (0, 96), (request, answer)
        assert not answer.stdout or not _members(answer), (request, answer)
    for request in (
        b"path var/lib/pve-cluster/config.db\nlive 1\n",  # config.db: not chosen
        b"path etc/ssl\n",  # below the roots, not on the list
        b"path etc/passwd\n",
        b"path etc/*\n",  # a glob wider than the list
        b"path etc/pve/local/\n",  # a folder through a link, by its trailing slash
    ):
        answer = ask(raw, "pvegit collect 1", request)
        assert answer.code == 96 and answer.stdout == b"", (request, answer)
    # A folder reached through a planted link is refused; a file through one is judged
    # where it really is.
    node.sh("ln -sfn /etc /etc/network/up && ln -sfn /etc/pve/priv /etc/network/keys")
    answer = ask(raw, "pvegit collect 1", b"path etc/network/up/pve\n")
    assert answer.code == 96 and b"not on this node's allow-list" in answer.stderr, answer
    answer = ask(raw, "pvegit collect 1", b"path etc/network/keys/authkey.key\n")
    assert (answer.code == 0 and not answer.stdout) or not _members(answer), answer
    # Inventory: only the listed commands; checksums: only listed, not excluded files.
    answer = ask(raw, "pvegit inventory 1", b"boundary b\nkeep 10\ncommand pveversion\n")
    assert answer.code == 0, answer
    node.sh(f"sed -i '/^command pveversion$/d' {ALLOW_PATH}")
    answer = ask(raw, "pvegit inventory 1", b"boundary b\nkeep 10\ncommand pveversion\n")
    assert answer.code == 96 and b"not on this node's allow-list" in answer.stderr
    names = b"root /\netc/pve/priv/authkey.key\0etc/network/keys/authkey.key\0etc/hosts\0"
    answer = ask(raw, "pvegit checksums 1", names)
    assert answer.code == 0 and b"etc/hosts" in answer.stdout and b"authkey" not in answer.stdout

    # The list is root's: writable by others, or gone, and the node reads nothing.
    node.sh(f"chmod 0666 {ALLOW_PATH}")
    answer = ask(raw, "pvegit collect 1", b"path etc/hosts\n")
    assert answer.code == 96 and b"writable by others" in answer.stderr
    # Over its limit it is refused, never cut (a cut exclude line would exclude less).
    node.sh(f"chmod 0644 {ALLOW_PATH} && head -c 1100000 /dev/zero | tr '\\0' '#' >>{ALLOW_PATH}")
    answer = ask(raw, "pvegit collect 1", b"path etc/hosts\n")
    assert answer.code == 96 and b"over 1 MiB" in answer.stderr
    node.sh(f"rm {ALLOW_PATH}")
    answer = ask(raw, "pvegit version 1")
    assert answer.stdout.split()[-1] == b"none"
    run = take_snapshot(home, store, hardened)
    assert run.status == "failed" and "no allow-list at /etc/pvegit-collect.allow" in (
        run.error or ""
    )
    shown = pvegit_process(home, "host", "show", "pve1").stdout
    assert "allow-list:" in shown and "the node has no allow-list" in shown
