"""A node whose files have every kind of odd name and content, over real SSH.

Names with spaces, newlines, tabs, backslashes, quotes, shell syntax, bytes
that are not UTF-8, a leading dash, paths over 1,000 bytes; empty, binary and
1 MiB files; 3,000 guest configs. They must be stored byte for byte (read
back with the real git client), leave a second run unchanged, verify against
sha256sum on the node, restore exactly, and run nothing on the node.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

from conftest import git

from pvegit.actions.snapshot import take_snapshot
from pvegit.actions.verify import verify_host
from pvegit.config.home import Home
from pvegit.state.store import Host, Store
from testbed.nodes import Node

ODD = "etc/pve/odd"
LONG = "/".join(["d" * 200] * 6) + "/deep.cfg"  # 1,215 bytes below ODD
NAMES: dict[bytes, bytes] = {
    b"name with spaces.cfg": b"spaces\n",
    b"new\nline.cfg": b"newline in the name\n",
    b"tab\there.cfg": b"tab\n",
    b"back\\slash.cfg": b"backslash\n",
    b"quote'and\"double.cfg": b"quotes\n",
    b"$(touch PWNED).cfg": b"command substitution\n",
    b"`touch PWNED2`;.cfg": b"backticks\n",
    b"-dash-first.cfg": b"dash\n",
    b"latin1-\xe9t\xe9.cfg": b"not UTF-8\n",
    "ünïcödé-名前.cfg".encode(): b"unicode\n",
    b"empty.cfg": b"",
    b"binary.bin": bytes(range(256)) * 64 + b"\0\0\0",
    # pmxcfs's limit is 1 MiB a file: this one is just under it.
    b"big.cfg": (b"# a large generated file\n" + b"x" * 79 + b"\n") * 9_986,
    LONG.encode(): b"deep\n",
}
GUESTS = 3000


def odd_tar() -> bytes:
    """A tar of the odd tree, names as raw bytes (GNU format keeps them as they are)."""
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, errors="surrogateescape"
    ) as archive:

        def add(name: bytes, data: bytes) -> None:
            info = tarfile.TarInfo(name.decode("utf-8", "surrogateescape"))
            info.size, info.mode, info.uid, info.gid = len(data), 0o640, 0, 33
            archive.addfile(info, io.BytesIO(data))

        for name, data in NAMES.items():
            add(f"{ODD}/".encode() + name, data)
        for number in range(GUESTS):
            vmid = 10_000 + number
            add(
                f"etc/pve/nodes/pve1/qemu-server/{vmid}.conf".encode(),
                f"name: guest{vmid}\nmemory: 2048\nnet0: virtio,bridge=vmbr0\n".encode(),
            )
    return buffer.getvalue()


def unpack_on(node: Node) -> None:
    archive = node.directory / "odd.tar"
    archive.write_bytes(odd_tar())
    node.sh(f"mkdir -p /{ODD} && tar -xpf {archive} -C /")


def stored_names(home: Home) -> set[bytes]:
    listing = subprocess.run(
        [
            "git",
            "--git-dir",
            str(home.repo_path("pve1")),
            "ls-tree",
            "-r",
            "-z",
            "--name-only",
            "HEAD",
            f"{ODD}/",
        ],
        capture_output=True,
        check=True,
    ).stdout
    prefix = f"{ODD}/".encode()
    return {name.removeprefix(prefix) for name in listing.split(b"\0") if name}


def blob(home: Home, name: bytes) -> bytes:
    """The file's content at HEAD, asked of git by its raw name."""
    command: list[str | bytes] = ["git", "--git-dir", str(home.repo_path("pve1")), "cat-file"]
    revision = b"HEAD:" + f"{ODD}/".encode() + name
    return subprocess.run([*command, "blob", revision], capture_output=True, check=True).stdout


def test_odd_names_and_contents_round_trip(
    cli,  # type: ignore[no-untyped-def]
    home: Home,
    store: Store,
    node: Node,
    ssh_host: Host,
) -> None:
    unpack_on(node)
    first = take_snapshot(home, store, ssh_host)
    assert first.status == "changed", first
    assert set(NAMES) <= stored_names(home)
    for name, data in NAMES.items():
        assert blob(home, name) == data, name
    guests = git(
        "--git-dir",
        str(home.repo_path("pve1")),
        "ls-tree",
        "--name-only",
        "HEAD",
        "etc/pve/nodes/pve1/qemu-server/",
    )
    assert len(guests.split()) >= GUESTS
    assert git("--git-dir", str(home.repo_path("pve1")), "fsck", "--strict") == ""

    assert take_snapshot(home, store, ssh_host).status == "unchanged"  # names round-trip exactly

    verified = verify_host(home, store, ssh_host)
    assert verified.ok, verified.problems
    assert verified.node_checked >= GUESTS + len(NAMES)

    # Restore the odd directory after it was wiped; nothing in a name ran on the node.
    node.sh(f"rm -rf /{ODD}")
    preview = subprocess.run(
        [
            *(sys.executable, "-m", "pvegit", "--home", str(home.root)),
            *("restore", "pve1", "HEAD", f"/{ODD}", "--dry-run"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert preview.returncode == 0, preview.stderr
    assert "latin1-\\xe9t\\xe9.cfg" in preview.stdout and "new\\x0aline.cfg" in preview.stdout
    done = cli("restore", "pve1", "HEAD~0", f"/{ODD}", "--yes")
    assert done.code == 0, done.out + done.err
    assert "verified: the node now matches the revision" in done.out
    for name, data in NAMES.items():
        path = f"/{ODD}/".encode() + name
        assert read_on(node, path) == data, name
    for marker in ("PWNED", "PWNED2"):
        found = node.sh(f"find / -xdev -name {marker} 2>/dev/null", check=False).stdout
        assert found == "", f"a file name ran as a command: {found}"


READ = "import sys; sys.stdout.buffer.write(open(bytes.fromhex(sys.argv[1]), 'rb').read())"


def read_on(node: Node, path: bytes) -> bytes:
    """Read a file on the node by a name that may hold any byte (passed hex-encoded)."""
    command = ["nsenter", "-t", str(node.pid), "-m", "-u", "--", "/usr/bin/python3", "-c", READ]
    return subprocess.run([*command, path.hex()], capture_output=True, check=True).stdout
