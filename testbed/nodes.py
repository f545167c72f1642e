"""Simulated Proxmox VE nodes: real OpenSSH servers in Linux namespaces.

Each node is an ``sshd`` in its own mount + UTS namespace, listening on its
own loopback address (127.x.y.z) and showing a realistic PVE 8 file tree at
the real paths (a PVE 9 one for pve9, pve10 and pve11):

* ``/etc/pve`` is **Proxmox's own pmxcfs** (built by ../shared/pmxcfs/build.sh
  from the pve-cluster source), running in local mode (``pmxcfs -l``) in the
  node's mount namespace and a network namespace of its own, on the node's own
  ``/var/lib/pve-cluster/config.db``. The fixture's /etc/pve was written into a
  pmxcfs through its mount, as an admin or the API would. Without the built
  pmxcfs (a plain clone elsewhere) /etc/pve is a stand-in overlay mount that
  plays pmxcfs from our notes; ``describe()`` says which one runs;
* ``/etc`` is an overlay of the node's fixture over the machine's /etc, so the
  node has its own passwd (with a ``pvebackup`` user in ``www-data``), SSH
  host key and configuration, and nothing written over SSH reaches the real
  machine;
* ``/usr/sbin`` carries stand-ins for ``pveversion``, ``qm``, ``pct``,
  ``pvecm``, ``pvesm``, ``zpool`` and ``zfs`` whose output has the noise the
  real ones have (PIDs, run states, dates, counters), as PVE 8 or PVE 9
  prints it;
* ``/root``, ``/home``, ``/var/spool``, ``/var/log``, ``/usr/local/bin``,
  ``/usr/local/sbin``, ``/usr/local/lib`` and ``/var/lib`` (overlays) and
  ``/run`` (a tmpfs) are the node's own.

Needs root (mount namespaces, overlay mounts, FUSE) and OpenSSH's sshd. Used
by the tests and by the benchmarks under bench/.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import selectors
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvegit.config.home import Home
from pvegit.demo.node import FIXTURE_NODES, PVE9_CLUSTER, node_items
from pvegit.demo.tree import WWW_DATA_GID, write_items
from pvegit.node.ssh import scan_host_key
from pvegit.state.store import Host, Store
from testbed.pve9 import PVE9_STAND_INS

SSHD = "/usr/sbin/sshd"
# Where ../shared/pmxcfs/build.sh puts the binary; $PVEGIT_PMXCFS overrides it.
PMXCFS_VERSION = "8.1.3"
DEFAULT_PMXCFS = f"/var/cache/pmxcfs-{PMXCFS_VERSION}/pmxcfs"
# The status files and built-in links pmxcfs makes itself (writing them fails).
PMXCFS_OWNED = (".version", ".members", ".vmlist", ".clusterlog", ".rrd", ".debug")
PMXCFS_LINKS = ("local", "qemu-server", "lxc", "openvz")
ROOT_PASSWORD = "pve-root-password"
BACKUP_USER = "pvebackup"
BACKUP_UID = 3901
_address_counter = itertools.count(2)


def _address_base() -> tuple[str, int]:
    """This process's loopback block: ``127.N`` and the first third octet in it.

    A plain run takes N from its pid. Under pytest-xdist every worker takes N from
    the run's controller (their common parent) and a third-octet range of its own
    (gwK: 16K..16K+15), so no two workers of one run can ever share an address.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return f"127.{100 + os.getppid() % 100}", 16 * (int(worker[2:]) % 15)
    return f"127.{100 + os.getpid() % 100}", 0


_address_prefix, _address_octet = _address_base()

STAND_INS: dict[str, str] = {
    "pveversion": r"""#!/bin/sh
if [ "$1" = "-v" ]; then
cat <<'END'
proxmox-ve: 8.2.0 (running kernel: 6.8.8-2-pve)
pve-manager: 8.2.4 (running version: 8.2.4/faa83925c9641325)
proxmox-kernel-helper: 8.1.0
pve-cluster: 8.0.7
qemu-server: 8.2.1
pve-container: 5.1.12
zfsutils-linux: 2.2.4-pve1
corosync: 3.1.7-pve3
END
else
echo "pve-manager/8.2.4/faa83925c9641325 (running kernel: 6.8.8-2-pve)"
fi
""",
    "qm": r"""#!/bin/sh
[ "$1" = "list" ] || exit 2
[ "$(id -u)" = 0 ] || { echo "only root can list VMs" >&2; exit 1; }
# State and PID move on their own, like on a real node.
awk -v seed="$(od -An -N4 -tu4 /dev/urandom)" '
  BEGIN { srand(seed); printf "%10s %-20s %-10s %-10s %-12s %s\n", "VMID", "NAME", "STATUS",
          "MEM(MB)", "BOOTDISK(GB)", "PID" }
  FNR == 1 && NR > 1 { flush() }
  FNR == 1 { id = FILENAME; sub(/.*\//, "", id); sub(/\.conf$/, "", id); name = ""; mem = "" }
  /^name: / { name = $2 } /^memory: / { mem = $2 }
  function flush() { pid = int(rand() * 60000) + 1000; state = (pid % 2) ? "running" : "stopped"
    if (state == "stopped") pid = 0
    printf "%10s %-20s %-10s %-10s %-12s %s\n", id, name, state, mem, "32.00", pid }
  END { if (NR > 0) flush() }' /etc/pve/qemu-server/*.conf 2>/dev/null
""",
    "pct": r"""#!/bin/sh
[ "$1" = "list" ] || exit 2
[ "$(id -u)" = 0 ] || { echo "only root can list containers" >&2; exit 1; }
awk -v seed="$(od -An -N4 -tu4 /dev/urandom)" '
  BEGIN { srand(seed); printf "%-10s %-10s %-12s %s\n", "VMID", "Status", "Lock", "Name" }
  FNR == 1 && NR > 1 { flush() }
  FNR == 1 { id = FILENAME; sub(/.*\//, "", id); sub(/\.conf$/, "", id); name = "" }
  /^hostname: / { name = $2 }
  function flush() { state = (rand() < 0.5) ? "running" : "stopped"
    printf "%-10s %-10s %-12s %s\n", id, state, "", name }
  END { if (NR > 0) flush() }' /etc/pve/lxc/*.conf 2>/dev/null
""",
    "pvecm": r"""#!/bin/sh
[ "$1" = "status" ] || exit 2
cat <<END
Cluster information
-------------------
Name:             lab
Config Version:   3
Transport:        knet
Secure auth:      on

Quorum information
------------------
Date:             $(date)
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          0x00000001
Ring ID:          1.$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')
Quorate:          Yes

Membership information
----------------------
    Nodeid      Votes Name
0x00000001          1 10.20.0.11 (local)
0x00000002          1 10.20.0.12
0x00000003          1 10.20.0.13
END
""",
    "pvesm": r"""#!/bin/sh
[ "$1" = "status" ] || exit 2
used=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
echo "Name             Type     Status           Total            Used       Available        %"
echo "local             dir     active        98497780        $used        90000000    4.11%"
echo "local-zfs     zfspool     active       900000000       $used       800000000    9.50%"
echo "pbs-main          pbs     active      4000000000      $used      3000000000   25.00%"
""",
    "zpool": r"""#!/bin/sh
[ "$1" = "status" ] || exit 2
r=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
cat <<END
  pool: rpool
 state: ONLINE
  scan: scrub repaired 0B in 00:01:$r with 0 errors on $(date)
config:

    NAME                                 STATE     READ WRITE CKSUM
    rpool                                ONLINE       0     0     0
      mirror-0                           ONLINE       0     0     0
        ata-SAMSUNG_MZ7L3480-part3       ONLINE       0     0     $((r % 3))
        ata-SAMSUNG_MZ7L3481-part3       ONLINE       0     0     0

errors: No known data errors
END
""",
    "zfs": r"""#!/bin/sh
printf 'rpool\tfilesystem\nrpool/ROOT\tfilesystem\nrpool/ROOT/pve-1\tfilesystem\n'
printf 'rpool/data\tfilesystem\nrpool/data/vm-100-disk-0\tvolume\n'
""",
    # The machine's own apt-mark and systemctl would report the test machine (not a
    # PVE node) and cost ~1.5 s of CPU each per snapshot: a node's answers instead,
    # in their real formats (newest apt lists in any order; systemd 252's columns).
    "apt-mark": r"""#!/bin/sh
[ "$1" = "showmanual" ] || exec /usr/bin/apt-mark "$@"
for package in zfsutils-linux proxmox-ve postfix open-iscsi chrony ifupdown2 \
    openssh-server htop vim; do echo "$package"; done
""",
    "systemctl": r"""#!/bin/sh
case " $* " in
*" list-unit-files "*)
    cat <<'END'
chrony.service                  enabled enabled
corosync.service                enabled enabled
cron.service                    enabled enabled
ksmtuned.service                enabled enabled
lxc.service                     enabled enabled
postfix.service                 enabled enabled
pve-cluster.service             enabled enabled
pve-firewall.service            enabled enabled
pve-guests.service              enabled enabled
pve-ha-crm.service              enabled enabled
pve-ha-lrm.service              enabled enabled
pvedaemon.service               enabled enabled
pveproxy.service                enabled enabled
pvescheduler.service            enabled enabled
pvestatd.service                enabled enabled
ssh.service                     enabled enabled
zfs-import-cache.service        enabled enabled
zfs-mount.service               enabled enabled
pve-daily-update.timer          enabled enabled
END
    ;;
*) exec /usr/bin/systemctl "$@" ;;
esac
""",
}


SCHEMA = (
    "CREATE TABLE tree (inode INTEGER PRIMARY KEY NOT NULL, parent INTEGER NOT NULL, "
    "version INTEGER NOT NULL, writer INTEGER NOT NULL, mtime INTEGER NOT NULL, "
    "type INTEGER NOT NULL, name TEXT NOT NULL, data BLOB)"
)


def make_config_db(pve: Path, database: Path) -> None:
    """What pmxcfs would have stored for the files and directories below ``pve``."""
    database.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(database)
    connection.execute(SCHEMA)
    connection.execute("INSERT INTO tree VALUES (0, 0, 42, 0, 0, 8, '__version__', NULL)")
    inodes = {pve: 0}
    number = 1
    for directory, subdirectories, files in os.walk(pve):
        current = Path(directory)
        for name in sorted(subdirectories):
            path = current / name
            if path.is_symlink():
                continue  # the built-in links are not stored: pmxcfs makes them
            inodes[path] = number
            connection.execute(
                "INSERT INTO tree VALUES (?,?,1,0,0,4,?,NULL)", (number, inodes[current], name)
            )
            number += 1
        for name in sorted(files):
            path = current / name
            if path.is_symlink() or name.startswith("."):
                continue  # links and the status files pmxcfs generates on read
            connection.execute(
                "INSERT INTO tree VALUES (?,?,1,0,0,8,?,?)",
                (number, inodes[current], name, path.read_bytes()),
            )
            number += 1
    connection.commit()
    connection.close()


def find_pmxcfs() -> str | None:
    """The pmxcfs binary to run on the nodes: $PVEGIT_PMXCFS, else build.sh's output.

    ``PVEGIT_PMXCFS=stand-in`` runs the nodes on the stand-in even where pmxcfs is built.
    """
    explicit = os.environ.get("PVEGIT_PMXCFS")
    if explicit == "stand-in":
        return None
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RuntimeError(f"PVEGIT_PMXCFS={explicit} is not an executable pmxcfs")
        return explicit
    return DEFAULT_PMXCFS if os.access(DEFAULT_PMXCFS, os.X_OK) else None


def shared_pmxcfs_source() -> Path | None:
    """../shared/pmxcfs beside the project (the pve-cluster source and build.sh), if present."""
    candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "pmxcfs" / "build.sh"
    return candidate.parent if candidate.is_file() else None


_UNSHARE = ("unshare", "--mount", "--uts", "--propagation", "private")
# One request to pmxcfs, bounded: wakes its FUSE loop after SIGTERM (stop_pmxcfs).
_POKE_PVE = "timeout 1 ls -a /etc/pve >/dev/null 2>&1 || true"


def _wait_for_exit(pid: int, timeout: float) -> bool:
    """Block until process ``pid`` has exited (True) or ``timeout`` passed (False)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([handle], [], [], timeout)
        return bool(readable)
    finally:
        os.close(handle)


def _pmxcfs_writes(fixture: Path) -> str:
    """Shell lines that write the fixture's /etc/pve through a pmxcfs mount.

    Directories first, then files, as an admin or the API would; the status
    files and the built-in links are pmxcfs's own and are left to it.
    """
    source = fixture / "etc/pve"
    lines = ["set -e"]
    directories, files = [], []
    for directory, subdirectories, names in os.walk(source):
        current = Path(directory)
        relative = current.relative_to(source)
        for name in sorted(subdirectories):
            if not (current / name).is_symlink():
                directories.append(relative / name)
        for name in sorted(names):
            path = current / name
            if path.is_symlink() or (relative == Path(".") and name in PMXCFS_OWNED):
                continue
            files.append(relative / name)
    for relative in sorted(directories):
        lines.append(f"mkdir -p {shlex.quote(f'/etc/pve/{relative}')}")
    for relative in files:
        lines.append(
            f"cat {shlex.quote(str(source / relative))} > {shlex.quote(f'/etc/pve/{relative}')}"
        )
    return "\n".join(lines) + "\n"


def _blank_items(hostname: str) -> list[Any]:
    """A node just installed as ``hostname``: pmxcfs up with only what pve-cluster sets up
    (priv/, the node's own folders), SSH, nothing else configured."""
    from pvegit.demo.tree import TreeItem

    def pve(path: str, content: str | None, mode: int) -> Any:
        return TreeItem(f"etc/pve/{path}" if path else "etc/pve", content, mode, 0, WWW_DATA_GID)

    return [
        pve("", None, 0o755),
        pve(".version", '{"version": 1}\n', 0o640),  # the stand-in's: pmxcfs makes its own
        pve("priv", None, 0o700),
        pve("priv/authorized_keys", "", 0o600),
        pve("nodes", None, 0o750),
        pve(f"nodes/{hostname}", None, 0o750),
        pve(f"nodes/{hostname}/qemu-server", None, 0o750),
        pve(f"nodes/{hostname}/lxc", None, 0o750),
        pve(f"nodes/{hostname}/openvz", None, 0o750),
        pve(f"nodes/{hostname}/priv", None, 0o700),
        TreeItem("etc/hostname", f"{hostname}\n", 0o644),
        # pmxcfs will not start unless the host name resolves to a non-loopback address.
        TreeItem(
            "etc/hosts", f"127.0.0.1 localhost\n10.20.0.11 {hostname}.lab {hostname}\n", 0o644
        ),
        TreeItem("etc/network", None, 0o755),
        TreeItem("etc/network/interfaces", "auto lo\niface lo inet loopback\n", 0o644),
        TreeItem("etc/ssh", None, 0o755),
        TreeItem("etc/ssh/ssh_host_ed25519_key", "placeholder\n", 0o600),
        TreeItem("root", None, 0o700),
        TreeItem("root/.ssh", None, 0o700),
        TreeItem("root/.ssh/authorized_keys", "", 0o777, link="/etc/pve/priv/authorized_keys"),
        TreeItem("usr/local/bin", None, 0o755),
        TreeItem("var/spool", None, 0o755),
    ]


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@dataclass
class Node:
    """One running simulated node."""

    name: str
    address: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    pmxcfs: str | None = None  # the pmxcfs binary serving /etc/pve; None: the stand-in
    log: list[str] = field(default_factory=list)
    drainer: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def public_host_key(self) -> Path:
        return self.directory / "etc-lower/ssh/ssh_host_ed25519_key.pub"

    @property
    def fingerprint(self) -> str:
        output = subprocess.run(
            ["ssh-keygen", "-lf", str(self.public_host_key)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return output.split()[1]

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside the node's namespaces (as root on the node)."""
        result = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-u", "--", "/bin/sh", "-c", script],
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{self.name}: {script!r} failed (exit {result.returncode}): {result.stderr}"
                + (f"\n(it printed: {result.stdout[-2000:]})" if result.stdout else "")
            )
        return result

    def write(self, path: str, content: str | bytes, mode: int | None = None) -> None:
        """Write a file on the node (through its mounts)."""
        data = content.encode() if isinstance(content, str) else content
        temporary = self.directory / "incoming"
        temporary.write_bytes(data)
        script = f"cat {temporary} > '{path}'"
        if mode is not None:
            script += f" && chmod {mode:o} '{path}'"
        self.sh(script)

    def read(self, path: str) -> str:
        return self.sh(f"cat '{path}'").stdout

    def authorize(self, public_key: str, user: str = "root") -> None:
        """Let ``public_key`` log in as ``user`` (root: the cluster-wide file in priv/)."""
        if user == "root":
            self.sh(f"echo '{public_key}' >> /etc/pve/priv/authorized_keys")
        else:
            self.sh(
                f"mkdir -p /home/{user}/.ssh && echo '{public_key}' >> "
                f"/home/{user}/.ssh/authorized_keys && chown -R {user} /home/{user}/.ssh && "
                f"chmod 700 /home/{user}/.ssh && chmod 600 /home/{user}/.ssh/authorized_keys"
            )

    @contextmanager
    def held_tar(self) -> Iterator[Callable[[float], None]]:
        """Make the node's tar stop at its start until the block ends.

        Yields ``wait_started(timeout)``, which returns once a run's tar has
        started on the node (it writes a marker, then blocks on a FIFO). On
        leaving the block the FIFO is released and the real tar is back.
        """
        gate = "/run/pvegit-gate"
        marker = "/run/pvegit-started"
        self.sh(f"rm -f {marker}; mkfifo {gate}")
        self.write(
            "/usr/sbin/tar",
            f'#!/bin/sh\necho started > {marker}\nread line < {gate}\nexec /usr/bin/tar "$@"\n',
            mode=0o755,
        )

        def wait_started(timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while self.sh(f"test -e {marker}", check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no run reached {self.name}'s tar in {timeout} s")

        try:
            yield wait_started
        finally:
            self.signal(signal.SIGCONT)
            # Opening the FIFO for writing blocks until the reader is there (or gone).
            threading.Thread(
                target=lambda: self.sh(f"echo go > {gate}", check=False), daemon=True
            ).start()
            self.sh(f"rm -f /usr/sbin/tar {marker}")

    @property
    def data_directory(self) -> Path:
        """The node's /var/lib/pve-cluster as seen from the machine (pmxcfs's config.db)."""
        return self.directory / "upper/varlib/pve-cluster"

    def pmxcfs_pid(self) -> int | None:
        """The running pmxcfs's pid (from its pid file on the node), or None."""
        if self.pmxcfs is None:
            return None
        answer = self.sh("cat /run/pve-cluster.pid 2>/dev/null", check=False).stdout.strip()
        if not answer.isdigit() or not os.path.exists(f"/proc/{answer}"):
            return None
        return int(answer)

    def stop_pmxcfs(self) -> None:
        """Stop pmxcfs cleanly (systemctl stop pve-cluster): /etc/pve becomes the plain
        empty directory under it."""
        if self.pmxcfs is None:
            self.sh("umount /etc/pve")
            return
        pid = self.pmxcfs_pid()
        if pid is None:
            raise RuntimeError(f"{self.name}: pmxcfs is not running")
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        # pmxcfs's FUSE threads notice the stop only when a request wakes them: the
        # signal reaches one thread of many, and unless it is the one blocked reading
        # /dev/fuse, pmxcfs waits for the next access (on a real node something soon
        # reads /etc/pve; here nothing would). Each look at /etc/pve is that access.
        deadline = time.monotonic() + 30
        while not _wait_for_exit(pid, 0.2):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: pmxcfs did not stop within 30 s")
            self.sh(_POKE_PVE, check=False)

    def kill_pmxcfs(self, number: int = signal.SIGKILL) -> None:
        """Crash pmxcfs (kill -9, like a segfault or the OOM killer): its FUSE mount stays,
        and every access to /etc/pve fails with ENOTCONN."""
        pid = self.pmxcfs_pid()
        if pid is None:
            raise RuntimeError(f"{self.name}: no real pmxcfs is running")
        os.kill(pid, number)
        if number == signal.SIGKILL and not _wait_for_exit(pid, 30):
            raise RuntimeError(f"{self.name}: pmxcfs survived SIGKILL for 30 s")

    def freeze_pmxcfs(self) -> None:
        """Hang pmxcfs (SIGSTOP): every access to /etc/pve blocks until ``thaw_pmxcfs``."""
        self.kill_pmxcfs(signal.SIGSTOP)

    def thaw_pmxcfs(self) -> None:
        self.kill_pmxcfs(signal.SIGCONT)

    def start_pmxcfs(self, *, quorate: bool = True) -> None:
        """Start pmxcfs again (after a stop or a crash): it mounts itself on /etc/pve.

        ``quorate=False`` starts it as a cluster member whose corosync is not
        there (no ``-l``): it serves /etc/pve read-only, as a node that lost
        quorum does (writes fail with EACCES).
        """
        if self.pmxcfs is None:
            self.sh(_pve_mount(self.directory))
            return
        # A crashed one left its dead FUSE mount; pmxcfs force-unmounts what is there,
        # a lazy unmount first makes that certain.
        self.sh("if ! ls /etc/pve >/dev/null 2>&1; then umount -l /etc/pve; fi", check=False)
        self.sh(_pmxcfs_start("/usr/sbin/pmxcfs", local=quorate))

    def lose_quorum(self) -> None:
        """Restart pmxcfs without quorum: /etc/pve stays readable, every write is refused."""
        self.stop_pmxcfs()
        self.start_pmxcfs(quorate=False)

    def signal(self, number: int) -> None:
        """Send a signal to the node's sshd and all its sessions."""
        os.killpg(self.process.pid, number)

    def stop(self) -> None:
        pmxcfs = self.pmxcfs_pid() if self.process.poll() is None else None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGCONT)
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if pmxcfs is not None:  # a daemon in a session of its own: not in sshd's group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pmxcfs, signal.SIGCONT)
                os.kill(pmxcfs, signal.SIGKILL)
            _wait_for_exit(pmxcfs, 30)
        if self.drainer is not None:
            self.drainer.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


def pmxcfs_launcher(binary: str) -> str:
    """The node's ``/usr/sbin/pmxcfs``: Proxmox's pmxcfs in a network namespace of its own
    (its libqb socket "pve2" is per network namespace).

    Daemonized, pmxcfs returns once it serves /etc/pve. Its start can hang for good
    in ``server_start`` (libqb's one-shot start timer never fires: the parent waits
    on its pipe, the child on a condition; seen once in about 200 starts here), so a
    daemonized start that has not come up in 20 s is killed, its mount let go, and
    tried again. A foreground start (``-f``) is left to its caller.
    """
    return f"""#!/bin/sh
mkdir -p /var/lib/pve-cluster /run/pve-cluster
case " $* " in *" -f "*|*" --foreground "*) exec unshare --net {binary} "$@";; esac
mine=$(readlink /proc/self/ns/mnt)
for try in 1 2 3; do
    timeout 20 unshare --net {binary} "$@" && exit 0
    status=$?
    [ "$status" = 124 ] || exit "$status"
    echo "pmxcfs: the start hung (try $try): killed, trying again" >&2
    for process in /proc/[0-9]*; do
        if [ "$(cat "$process/comm" 2>/dev/null)" = pmxcfs ] &&
            [ "$(readlink "$process/ns/mnt" 2>/dev/null)" = "$mine" ]; then
            kill -9 "${{process#/proc/}}" 2>/dev/null
        fi
    done
    umount -l /etc/pve 2>/dev/null
done
exit 1
"""


def _pmxcfs_start(launcher: str, *, local: bool = True) -> str:
    """Start pmxcfs through ``launcher`` (``pmxcfs_launcher``) in local mode (``-l``).
    Without ``local`` and with a corosync.conf it waits for a corosync that never
    comes: no quorum."""
    option = " -l" if local else ""
    return f"sh {launcher}{option}\n"


def _pve_mount(directory: Path) -> str:
    return (
        f"mount -t overlay overlay -o lowerdir={directory}/pve-lower,"
        f"upperdir={directory}/upper/pve,workdir={directory}/work/pve /etc/pve"
    )


class TestBed:
    """Creates and tracks simulated nodes below one directory."""

    __test__ = False  # not a pytest test class

    def __init__(self, base: Path, *, pmxcfs: str | bool | None = True) -> None:
        """``pmxcfs``: True finds the built pmxcfs (``find_pmxcfs``), a path uses that
        binary, False/None uses the stand-in overlay for /etc/pve."""
        self.base = base
        self.nodes: list[Node] = []
        self._counter = itertools.count()
        self.pmxcfs: str | None = find_pmxcfs() if pmxcfs is True else (pmxcfs or None)
        self._databases: dict[tuple[str, str], Path] = {}
        self._database_lock = threading.Lock()

    @staticmethod
    def available() -> str | None:
        """None if nodes can run here, else why not."""
        if os.geteuid() != 0:
            return "the simulated nodes need root (mount namespaces)"
        for tool in (SSHD, "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/ssh-keygen"):
            if not os.path.exists(tool):
                return f"{tool} is missing (apt-get install openssh-server util-linux)"
        return None

    def describe(self) -> str:
        """One line: what serves /etc/pve on the simulated nodes."""
        if self.pmxcfs:
            return f"/etc/pve on the simulated nodes: Proxmox's pmxcfs ({self.pmxcfs})"
        source = shared_pmxcfs_source()
        why = (
            f"not built: run {source}/build.sh as root"
            if source
            else "../shared/pmxcfs is not beside this clone"
        )
        return (
            "/etc/pve on the simulated nodes: a STAND-IN overlay, not Proxmox's pmxcfs "
            f"({why}); the tests that need the real pmxcfs are skipped"
        )

    def _fixture(self, node_name: str, hostname: str) -> Path:
        key = f"{node_name}-{hostname}" if node_name == "blank" else node_name
        template = self.base / f"template-{key}"
        with self._database_lock:
            if not template.exists():
                staging = self.base / f"staging-{key}"
                if node_name == "blank":
                    write_items(staging, _blank_items(hostname))
                else:
                    write_items(staging, node_items(node_name))
                staging.rename(template)
        return template

    def _config_db(self, node_name: str, hostname: str) -> Path:
        """A config.db that a real pmxcfs wrote while the fixture's /etc/pve was copied
        into its mount (made once per fixture, then copied for every node)."""
        key = (node_name, hostname)
        with self._database_lock:
            if key in self._databases:
                return self._databases[key]
        fixture = self._fixture(node_name, hostname)
        assert self.pmxcfs is not None
        work = self.base / f"pmxcfs-template-{node_name}-{hostname}-{next(self._counter)}"
        for sub in ("etc-upper/pve", "etc-work", "varlib-upper", "varlib-work"):
            (work / sub).mkdir(parents=True)
        (work / "etc-upper/hosts").write_text(f"127.0.0.1 localhost\n10.20.0.11 {hostname}\n")
        (work / "writes.sh").write_text(_pmxcfs_writes(fixture))
        (work / "pmxcfs").write_text(pmxcfs_launcher(self.pmxcfs))
        script = (
            "set -e\n"
            # A failed write must not leave this pmxcfs running (it keeps the namespace).
            "trap 'status=$?; pid=$(cat /run/pve-cluster.pid 2>/dev/null) && "
            'kill -9 "$pid" 2>/dev/null; exit $status\' EXIT\n'
            f"hostname {hostname}\n"
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={work}/etc-upper,"
            f"workdir={work}/etc-work /etc\n"
            f"mount -t overlay overlay -o lowerdir=/var/lib,upperdir={work}/varlib-upper,"
            f"workdir={work}/varlib-work /var/lib\n"
            "mount -t tmpfs -o mode=755 tmpfs /run\n"
            + _pmxcfs_start(f"{work}/pmxcfs")
            + f"sh {work}/writes.sh\n"
            "pid=$(cat /run/pve-cluster.pid)\n"
            'kill -TERM "$pid"\n'
            # A clean stop checkpoints the WAL into config.db; pmxcfs notices the stop
            # at its next request (see Node.stop_pmxcfs), so each wait looks at /etc/pve.
            f'while kill -0 "$pid" 2>/dev/null; do {_POKE_PVE}; sleep 0.01; done\n'
        )
        try:
            result = subprocess.run(
                [*_UNSHARE, "/bin/sh", "-x", "-c", script],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired as err:  # say which step hung (sh -x traced it)
            said = err.stderr if isinstance(err.stderr, str) else (err.stderr or b"").decode()
            raise RuntimeError(
                f"pmxcfs took the fixture {node_name} for over 120 s; the last steps:\n"
                + said[-2000:]
            ) from err
        database = work / "varlib-upper/pve-cluster/config.db"
        if result.returncode != 0 or not database.is_file():
            raise RuntimeError(f"pmxcfs could not take the fixture {node_name}: {result.stderr}")
        saved = self.base / f"config-db-{node_name}-{hostname}"
        saved.mkdir()
        for name in ("config.db", "config.db-wal"):
            if (database.parent / name).exists():
                shutil.copy2(database.parent / name, saved / name)
        shutil.rmtree(work)
        with self._database_lock:
            self._databases[key] = saved
        return saved

    def start(
        self, name: str = "pve1", *, node_name: str | None = None, hostname: str | None = None
    ) -> Node:
        """Start a node called ``name`` (its fixture is cluster node ``node_name``: pve1-3
        run Proxmox VE 8, pve9-11 Proxmox VE 9).

        ``node_name="blank"``: a freshly installed node, pmxcfs running on an
        empty cluster file system and nothing of the fixture's configuration.
        ``hostname``: the node's own name (pmxcfs's built-in links point at
        nodes/HOSTNAME); by default the fixture's (a blank node: pve1).
        """
        node_name = node_name or (name if name in FIXTURE_NODES else "pve1")
        hostname = hostname or (node_name if node_name != "blank" else "pve1")
        directory = self.base / f"node-{name}-{next(self._counter)}"
        directory.mkdir(parents=True)
        tree = directory / "tree"
        # cp -a keeps owners (root:www-data under /etc/pve); shutil.copytree does not.
        subprocess.run(["cp", "-a", str(self._fixture(node_name, hostname)), str(tree)], check=True)
        (tree / "etc/pve").rename(directory / "pve-lower")
        (tree / "etc/pve").mkdir()
        os.chown(tree / "etc/pve", 0, WWW_DATA_GID)
        os.chmod(tree / "etc/pve", 0o755)
        (tree / "etc").rename(directory / "etc-lower")
        self._accounts(directory / "etc-lower")
        self._host_key(directory / "etc-lower", name)
        for sub in (
            "upper/etc",
            "work/etc",
            "upper/pve",
            "work/pve",
            "upper/sbin",
            "work/sbin",
            "upper/varlib/pve-cluster",
            "work/varlib",
            "upper/locallib",
            "work/locallib",
            "varlib-lower",
            "sbin",
            "home",
            "empty",
            "log",
        ):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        database = directory / "upper/varlib/pve-cluster/config.db"
        if self.pmxcfs:
            # The node's own pmxcfs database, seen as /var/lib/pve-cluster/config.db.
            saved = self._config_db(node_name, hostname)
            for item in saved.iterdir():
                shutil.copy2(item, database.parent / item.name)
            pve = _pmxcfs_start("/usr/sbin/pmxcfs")
        else:
            # The stand-in: a database like pmxcfs's, and an overlay on /etc/pve.
            make_config_db(directory / "pve-lower", database)
            pve = _pve_mount(directory) + "\n"
        os.chmod(database, 0o600)
        os.chmod(database.parent, 0o755)
        os.chown(directory / "upper/pve", 0, WWW_DATA_GID)
        os.chmod(directory / "upper/pve", 0o755)
        programs = dict(STAND_INS)
        if node_name in PVE9_CLUSTER:
            programs.update(PVE9_STAND_INS)
        if self.pmxcfs:
            # `pmxcfs -l` as the runbook says it; in a network namespace of its own.
            programs["pmxcfs"] = pmxcfs_launcher(self.pmxcfs)
        for program, text in programs.items():
            (directory / "sbin" / program).write_text(text)
            os.chmod(directory / "sbin" / program, 0o755)
        home = directory / "home" / BACKUP_USER
        home.mkdir()
        os.chown(home, BACKUP_UID, BACKUP_UID)
        (tree / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        (tree / "usr/local/lib").mkdir(parents=True, exist_ok=True)
        (tree / "var/spool").mkdir(parents=True, exist_ok=True)

        number = next(_address_counter)
        address = f"{_address_prefix}.{_address_octet + number // 250 % 16}.{number % 250 + 2}"
        port = _free_port(address)
        (directory / "sshd_config").write_text(
            f"ListenAddress {address}:{port}\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PidFile none\nUsePAM no\nUseDNS no\nPermitRootLogin yes\n"
            "PasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
            "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2\nStrictModes yes\n"
            "MaxStartups 100:30:200\nMaxSessions 50\nLogLevel INFO\n"
        )
        boot = directory / "boot.sh"
        boot.write_text(
            "set -e\n"
            f"hostname {hostname}\n"
            f"mount -t overlay overlay -o lowerdir={directory}/etc-lower:/etc,"
            f"upperdir={directory}/upper/etc,workdir={directory}/work/etc /etc\n"
            f"mount -t overlay overlay -o lowerdir={directory}/sbin:/usr/sbin,"
            f"upperdir={directory}/upper/sbin,workdir={directory}/work/sbin /usr/sbin\n"
            f"mount -t overlay overlay -o lowerdir={directory}/varlib-lower:/var/lib,"
            f"upperdir={directory}/upper/varlib,workdir={directory}/work/varlib /var/lib\n"
            f"mount --bind {tree}/root /root\n"
            f"mount --bind {tree}/var/spool /var/spool\n"
            f"mount --bind {tree}/usr/local/bin /usr/local/bin\n"
            # PVE 9 pins NIC names with .link files in /usr/local/lib/systemd/network.
            f"mount -t overlay overlay -o lowerdir={tree}/usr/local/lib:/usr/local/lib,"
            f"upperdir={directory}/upper/locallib,workdir={directory}/work/locallib "
            "/usr/local/lib\n"
            f"mount --bind {directory}/empty /usr/local/sbin\n"
            f"mount --bind {directory}/home /home\n"
            # The node's own /var/log (pvegit-collect and pvegit-restore log their refusals
            # there when the node has no syslog).
            f"mount --bind {directory}/log /var/log\n"
            "mount -t tmpfs -o mode=755 tmpfs /run\n"
            f"{pve}"
            "mkdir -p /run/sshd\n"
            f"exec {SSHD} -D -e -f {directory}/sshd_config\n"
        )
        process = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--propagation", "private", "/bin/sh", str(boot)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        node = Node(name, address, port, directory, process, pmxcfs=self.pmxcfs)
        self.nodes.append(node)
        self._wait_listening(node)
        return node

    def _wait_listening(self, node: Node) -> None:
        """Block until sshd says it listens (its own log line), or fail with its log."""
        assert node.process.stderr is not None
        stream = node.process.stderr
        selector = selectors.DefaultSelector()
        selector.register(stream, selectors.EVENT_READ)
        # The boot script starts pmxcfs before sshd: a start that hangs is retried by
        # pmxcfs_launcher after 20 s, up to three times, so wait past that.
        deadline = time.monotonic() + 90
        buffer = b""
        while b"Server listening" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                node.stop()
                raise RuntimeError(f"sshd of {node.name} did not start: {buffer.decode()}")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"sshd of {node.name} exited: {buffer.decode()}")
            buffer += chunk
        selector.close()
        node.log.append(buffer.decode("utf-8", "replace"))

        def drain() -> None:
            while chunk := os.read(stream.fileno(), 65536):
                node.log.append(chunk.decode("utf-8", "replace"))

        node.drainer = threading.Thread(target=drain, daemon=True)
        node.drainer.start()

    @staticmethod
    def _accounts(etc: Path) -> None:
        """The node's own passwd/group/shadow: the machine's plus pvebackup, root password set."""
        password_hash = subprocess.run(
            ["openssl", "passwd", "-6", "-salt", "pvegittestbed", ROOT_PASSWORD],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        passwd = Path("/etc/passwd").read_text()
        passwd += f"{BACKUP_USER}:x:{BACKUP_UID}:{BACKUP_UID}::/home/{BACKUP_USER}:/bin/sh\n"
        (etc / "passwd").write_text(passwd)
        groups = []
        for line in Path("/etc/group").read_text().splitlines():
            if line.startswith("www-data:"):
                members = line.rsplit(":", 1)[1]
                line = line + ("," if members else "") + BACKUP_USER
            groups.append(line)
        groups.append(f"{BACKUP_USER}:x:{BACKUP_UID}:")
        (etc / "group").write_text("\n".join(groups) + "\n")
        shadow = []
        for line in Path("/etc/shadow").read_text().splitlines():
            if line.startswith("root:"):
                fields = line.split(":")
                fields[1] = password_hash
                line = ":".join(fields)
            shadow.append(line)
        shadow.append(f"{BACKUP_USER}:*:19000:0:99999:7:::")
        (etc / "shadow").write_text("\n".join(shadow) + "\n")
        os.chmod(etc / "shadow", 0o640)

    @staticmethod
    def _host_key(etc: Path, name: str) -> None:
        key = etc / "ssh/ssh_host_ed25519_key"
        key.unlink()
        Path(f"{key}.pub").unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(key)],
            check=True,
        )

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes.clear()


def register_node(
    store: Store,
    home: Home,
    node: Node,
    name: str = "pve1",
    *,
    user: str = "root",
    categories: tuple[str, ...] = ("cluster", "network", "storage", "system", "inventory"),
) -> Host:
    """Add ``node`` as a pvegit host: its key trusted, pvegit's key installed for ``user``."""
    node.authorize(home.public_key(), user)
    key_type, key_blob = scan_host_key(node.address, node.port)
    return store.add_host(
        Host(
            name,
            node.address,
            node.port,
            user=user,
            categories=categories,
            host_key_type=key_type,
            host_key=key_blob,
        )
    )
