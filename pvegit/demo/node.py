"""A simulated Proxmox VE 8 cluster node, as a directory tree.

Used by ``pvegit demo`` (through the ``local:`` transport) and by the test
bed, which serves the same tree over real OpenSSH. The tree is realistic:
a three-node cluster with guests, storage, users, firewall, HA, SDN, the
secrets under priv/, the pmxcfs status files and built-in symlinks, and the
configuration outside /etc/pve that a rebuild needs. Owners and modes are
set the way a node has them when run as root.

The nodes of a second cluster, ``PVE9_CLUSTER``, run Proxmox VE 9: their
tree is this one changed the way PVE 9 changes it (``demo_pve9.py``).
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

CLUSTER = ("pve1", "pve2", "pve3")
# A second cluster ("lab9", same site network) whose nodes run Proxmox VE 9.
PVE9_CLUSTER = ("pve9", "pve10", "pve11")
FIXTURE_NODES = CLUSTER + PVE9_CLUSTER
WWW_DATA_GID = 33


@dataclass
class _Item:
    path: str
    content: str | bytes | None  # None: a directory
    mode: int
    uid: int = 0
    gid: int = 0
    link: str | None = None


def _fake_key(label: str, lines: int = 4) -> str:
    digest = hashlib.sha512(label.encode()).hexdigest()
    body = "\n".join((digest * 2)[i * 64 : (i + 1) * 64] for i in range(lines))
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"


def _guest_vm(vmid: int, node: str, rng: random.Random) -> str:
    memory = rng.choice((2048, 4096, 8192, 16384))
    cores = rng.choice((1, 2, 4, 8))
    mac = ":".join(f"{rng.randrange(256):02X}" for _ in range(5))
    return (
        f"agent: 1\nboot: order=scsi0;ide2;net0\ncores: {cores}\ncpu: x86-64-v2-AES\n"
        f"ide2: none,media=cdrom\nmemory: {memory}\nmeta: creation-qemu=8.1.5,ctime=17{vmid:08d}\n"
        f"name: vm{vmid}-{node}\n"
        f"net0: virtio=BC:{mac},bridge=vmbr0,firewall=1,tag={10 + vmid % 5}\n"
        f"numa: 0\nonboot: {vmid % 2}\nostype: l26\nscsi0: local-zfs:vm-{vmid}-disk-0,"
        f"discard=on,iothread=1,size={rng.choice((32, 64, 128))}G\nscsihw: virtio-scsi-single\n"
        f"smbios1: uuid={hashlib.md5(str(vmid).encode()).hexdigest()[:8]}-1111-2222-3333-"
        f"{vmid:012d}\nsockets: 1\nvmgenid: {hashlib.sha1(str(vmid).encode()).hexdigest()[:8]}"
        "-aaaa-bbbb-cccc-dddddddddddd\n"
    )


def _guest_ct(vmid: int, node: str, rng: random.Random) -> str:
    mac = ":".join(f"{rng.randrange(256):02X}" for _ in range(5))
    return (
        f"arch: amd64\ncores: {rng.choice((1, 2))}\nfeatures: nesting=1\n"
        f"hostname: ct{vmid}-{node}\n"
        f"memory: {rng.choice((512, 1024, 2048))}\nnet0: name=eth0,bridge=vmbr0,firewall=1,"
        f"hwaddr=BC:{mac},ip=dhcp,type=veth\nostype: debian\nrootfs: local-zfs:subvol-{vmid}-"
        f"disk-0,size=8G\nswap: 512\nunprivileged: 1\n"
    )


def node_items(node: str, guests: int = 150, seed: int = 7) -> list[_Item]:
    """Every file, directory and link of a simulated node ``node``: a PVE 8 node of
    ``CLUSTER`` (any other name gets pve1's tree), or a PVE 9 node of ``PVE9_CLUSTER``."""
    if node in PVE9_CLUSTER:
        from pvegit.demo.pve9 import pve9_items

        return pve9_items(node, seed=seed)
    return cluster_node_items(node, CLUSTER, "lab", 11, guests=guests, seed=seed)


def cluster_node_items(
    node: str,
    members: tuple[str, ...],
    cluster_name: str,
    first_host: int,
    *,
    guests: int = 150,
    seed: int = 7,
) -> list[_Item]:
    """The PVE 8 tree of ``node`` in cluster ``cluster_name`` of ``members``, whose
    addresses are 10.20.0.``first_host`` and up."""
    rng = random.Random(seed)
    pve_files: list[_Item] = []
    index = members.index(node) if node in members else 0
    address = f"10.20.0.{first_host + index}"

    def pve(path: str, content: str | bytes | None, private: bool = False) -> None:
        mode = (0o700 if private else 0o750) if content is None else (0o600 if private else 0o640)
        pve_files.append(_Item(f"etc/pve/{path}", content, mode, 0, WWW_DATA_GID))

    pve("", None)
    pve_files[-1].mode = 0o755
    pve(".version", '{\n"version": 412,\n"user.cfg": 3,\n"storage.cfg": 9\n}\n')
    pve(
        ".members",
        f'{{\n"nodename": "{node}",\n"version": 5,\n"cluster": {{"name": "{cluster_name}"}}\n}}\n',
    )
    pve(".vmlist", '{\n"version": 52,\n"ids": {}\n}\n')
    pve(".clusterlog", '{\n"data": []\n}\n')
    pve(".rrd", "pve2-node/pve1:1700000000:0.1:2\n")
    pve(".debug", "0\n")
    pve(
        "authkey.pub",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
        "-----END PUBLIC KEY-----\n",
    )
    pve(
        "authkey.pub.old",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8Aold\n"
        "-----END PUBLIC KEY-----\n",
    )
    nodelist = "".join(
        f"  node {{\n    name: {name}\n    nodeid: {i + 1}\n    quorum_votes: 1\n"
        f"    ring0_addr: 10.20.0.{first_host + i}\n  }}\n"
        for i, name in enumerate(members)
    )
    corosync = (
        "logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n" + nodelist + "}\n\n"
        "quorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n"
        f"  cluster_name: {cluster_name}\n"
        "  config_version: 3\n  interface {\n    linknumber: 0\n  }\n  ip_version: ipv4-6\n"
        "  link_mode: passive\n  secauth: on\n  version: 2\n}\n"
    )
    pve("corosync.conf", corosync)
    pve(
        "datacenter.cfg",
        "keyboard: en-us\nmigration: secure,network=10.20.0.0/24\n"
        "ha: shutdown_policy=migrate\nemail_from: pve@example.org\n",
    )
    pve(
        "storage.cfg",
        (
            "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\n"
            "zfspool: local-zfs\n\tpool rpool/data\n\tsparse\n\tcontent images,rootdir\n\n"
            "pbs: pbs-main\n\tdatastore main\n\tserver 10.20.0.50\n\tcontent backup\n"
            "\tfingerprint 3a:5b:aa:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15"
            ":16:17:18:19:1a:1b:1c:1d\n\tprune-backups keep-all=1\n\tusername backup@pbs\n\n"
            "nfs: isos\n\texport /srv/iso\n\tpath /mnt/pve/isos\n\tserver 10.20.0.60\n"
            "\tcontent iso\n"
        ),
    )
    pve(
        "user.cfg",
        (
            "user:root@pam:1:0:::root@example.org:::\nuser:alice@pve:1:0:Alice:Admin:"
            "alice@example.org:::\nuser:backup@pve:1:0::::::\ngroup:admins:alice@pve::\n"
            "acl:1:/:@admins:Administrator:\nacl:1:/storage/pbs-main:backup@pve:PVEDatastoreUser:\n"
        ),
    )
    pve(
        "domains.cfg",
        "pam: pam\n\tcomment Linux PAM\n\npve: pve\n\tcomment Proxmox VE\n\tdefault 0\n",
    )
    pve(
        "jobs.cfg",
        "vzdump: backup-nightly\n\tschedule 02:00\n\tall 1\n\tenabled 1\n"
        "\tmode snapshot\n\tstorage pbs-main\n\tnotes-template {{guestname}}\n",
    )
    pve("replication.cfg", "local: 101-0\n\ttarget pve2\n\tschedule */15\n")
    pve("vzdump.cron", "# cluster wide vzdump cron schedule\n# Automatically generated file\n")
    pve(
        "pve-root-ca.pem",
        "-----BEGIN CERTIFICATE-----\nMIIFzTCCA7WgAwIBAgIUlab\n-----END CERTIFICATE-----\n",
    )
    pve("pve-www.key", _fake_key("www"))
    pve(
        "notifications.cfg",
        "sendmail: mail-to-root\n\tmailto-user root@pam\n\n"
        "matcher: default-matcher\n\tmode all\n\ttarget mail-to-root\n",
    )
    pve("mapping", None)
    pve("mapping/pci.cfg", "gpu0\n\tmap id=10de:1eb8,node=pve1,path=0000:41:00.0\n")
    pve("firewall", None)
    pve(
        "firewall/cluster.fw",
        "[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n[IPSET management]\n\n"
        "10.20.0.0/24\n\n[RULES]\n\nIN SSH(ACCEPT) -source +management -log nolog\n"
        "IN ACCEPT -source +management -p tcp -dport 8006 -log nolog\n",
    )
    pve("ha", None)
    pve("ha/groups.cfg", "group: prefer-pve1\n\tnodes pve1:2,pve2:1\n\tnofailback 0\n")
    pve(
        "ha/resources.cfg",
        "vm: 100\n\tgroup prefer-pve1\n\tstate started\n\nvm: 101\n\tstate started\n",
    )
    pve("ha/manager_status", '{"master_node":"pve1","timestamp":1700000000,"node_status":{}}\n')
    pve("ha/crm_commands", "")
    pve("sdn", None)
    pve("sdn/zones.cfg", "simple: lab\n\tipam pve\n\nvlan: office\n\tbridge vmbr0\n\tipam pve\n")
    pve("sdn/vnets.cfg", "vnet: labnet\n\tzone lab\n\nvnet: office10\n\tzone office\n\ttag 10\n")
    pve(
        "sdn/subnets.cfg",
        "subnet: lab-10.30.0.0-24\n\tvnet labnet\n\tgateway 10.30.0.1\n\tsnat 1\n",
    )
    pve("sdn/controllers.cfg", "")
    pve("sdn/.running-config", '{"version":7,"zones":{"ids":{}}}\n')
    pve("sdn/.version", "7\n")
    pve("sdn/pve-ipam-state.json", '{"zones":{"lab":{"subnets":{}}}}\n')
    pve("sdn/mac-cache.json", "{}\n")
    pve("nodes", None)
    vmid = 100
    for host in members:
        pve(f"nodes/{host}", None)
        pve(f"nodes/{host}/qemu-server", None)
        pve(f"nodes/{host}/lxc", None)
        pve(f"nodes/{host}/openvz", None)
        pve(f"nodes/{host}/priv", None, private=True)
        pve(
            f"nodes/{host}/pve-ssl.pem",
            f"-----BEGIN CERTIFICATE-----\n{host}\n-----END CERTIFICATE-----\n",
        )
        pve(f"nodes/{host}/pve-ssl.key", _fake_key(f"ssl-{host}"))
        pve(
            f"nodes/{host}/lrm_status",
            '{"mode":"active","results":{},"state":"active","timestamp":1700000000}\n',
        )
        pve(
            f"nodes/{host}/host.fw",
            "[OPTIONS]\n\nenable: 1\n\n[RULES]\n\n"
            "IN ACCEPT -source 10.20.0.0/24 -p tcp -dport 22\n",
        )
        pve(
            f"nodes/{host}/config",
            f"description: {host} in rack B\nwakeonlan: "
            f"bc:24:11:00:00:{first_host + members.index(host):02x}\n",
        )
        for _ in range(guests // len(members)):
            if vmid % 4 == 3:
                pve(f"nodes/{host}/lxc/{vmid}.conf", _guest_ct(vmid, host, rng))
            else:
                pve(f"nodes/{host}/qemu-server/{vmid}.conf", _guest_vm(vmid, host, rng))
            if vmid % 3 == 0:
                pve(
                    f"firewall/{vmid}.fw",
                    "[OPTIONS]\n\nenable: 1\n\n[RULES]\n\nIN HTTPS(ACCEPT) -log nolog\n",
                )
            vmid += 1
    # Built-in links to this node's own folders: kept as links, never followed.
    for link, target in (
        ("local", f"nodes/{node}"),
        ("qemu-server", f"nodes/{node}/qemu-server"),
        ("lxc", f"nodes/{node}/lxc"),
        ("openvz", f"nodes/{node}/openvz"),
    ):
        pve_files.append(_Item(f"etc/pve/{link}", "", 0o777, 0, WWW_DATA_GID, link=target))
    pve("priv", None, private=True)
    pve("priv/authkey.key", _fake_key("authkey"), private=True)
    pve(
        "priv/authorized_keys",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderRootKey root@pve1\n",
        private=True,
    )
    pve("priv/known_hosts", "pve1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPve1\n", private=True)
    pve(
        "priv/shadow.cfg",
        "alice:$5$salt$abcdefghijklmnopqrstuvwxyz0123456789ABCDEF:\n",
        private=True,
    )
    pve("priv/token.cfg", "backup@pve!ci 8f0a4c4e-1111-2222-3333-444455556666\n", private=True)
    pve("priv/tfa.cfg", '{"users":{}}\n', private=True)
    pve("priv/pve-root-ca.key", _fake_key("root-ca"), private=True)
    pve("priv/pve-root-ca.srl", "1C\n", private=True)
    pve("priv/storage", None, private=True)
    pve("priv/storage/pbs-main.pw", "s3cr3t-pbs-password\n", private=True)
    pve(
        "priv/storage/pbs-main.enc",
        '{"kdf":null,"created":"2024-01-01","key":"AAAA"}\n',
        private=True,
    )
    pve("priv/lock", None, private=True)
    pve("priv/acme", None, private=True)

    items = list(pve_files)

    def etc(
        path: str, content: str | None, mode: int | None = None, uid: int = 0, gid: int = 0
    ) -> None:
        items.append(
            _Item(
                path,
                content,
                mode if mode is not None else (0o755 if content is None else 0o644),
                uid,
                gid,
            )
        )

    etc("etc/hostname", f"{node}\n")
    etc(
        "etc/hosts",
        f"127.0.0.1 localhost.localdomain localhost\n{address} {node}.lab.example.org "
        f"{node}\n\n::1 ip6-localhost ip6-loopback\n",
    )
    etc("etc/resolv.conf", "search lab.example.org\nnameserver 10.20.0.1\n")
    etc("etc/timezone", "Europe/Vienna\n")
    etc("etc/network", None)
    etc(
        "etc/network/interfaces",
        (
            "auto lo\niface lo inet loopback\n\niface nic0 inet manual\n\n"
            "iface nic1 inet manual\n\n"
            "auto bond0\niface bond0 inet manual\n\tbond-slaves nic0 nic1\n\tbond-miimon 100\n"
            "\tbond-mode 802.3ad\n\nauto vmbr0\niface vmbr0 inet static\n"
            f"\taddress {address}/24\n\tgateway 10.20.0.1\n\tbridge-ports bond0\n"
            "\tbridge-stp off\n\tbridge-fd 0\n\tbridge-vlan-aware yes\n\tbridge-vids 2-4094\n\n"
            "source /etc/network/interfaces.d/*\n"
        ),
    )
    etc("etc/network/interfaces.d", None)
    etc(
        "etc/network/interfaces.d/sdn",
        "#version:7\n\nauto labnet\niface labnet\n\taddress 10.30.0.1/24\n\tbridge_ports none\n",
    )
    etc("etc/systemd/network", None)
    for number, mac in ((0, "bc:24:11:aa:00:01"), (1, "bc:24:11:aa:00:02")):
        etc(
            f"etc/systemd/network/50-pve-nic{number}.link",
            f"[Match]\nMACAddress={mac}\nType=ether\n\n[Link]\nName=nic{number}\n",
        )
    etc("etc/udev/rules.d", None)
    etc("etc/udev/rules.d/70-persistent-net.rules", "# kept for older installs\n")
    etc("etc/frr", None)
    etc("etc/frr/frr.conf.local", "! local FRR additions\nrouter bgp 65001\n")
    etc("etc/chrony", None)
    etc("etc/chrony/chrony.conf", "pool 2.debian.pool.ntp.org iburst\nmakestep 1 3\n")
    etc("etc/corosync", None)
    etc("etc/corosync/corosync.conf", corosync)
    etc("etc/corosync/authkey", _fake_key("corosync"), 0o400)
    etc("etc/kernel", None)
    etc("etc/kernel/cmdline", "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on\n")
    etc("etc/kernel/proxmox-boot-uuids", "A1B2-C3D4\nE5F6-0718\n")
    etc("etc/default/grub", 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n')
    etc("etc/modprobe.d", None)
    etc("etc/modprobe.d/zfs.conf", "options zfs zfs_arc_max=8589934592\n")
    etc("etc/modprobe.d/pve-blacklist.conf", "blacklist nvidiafb\n")
    etc("etc/modules", "vfio\nvfio_iommu_type1\nvfio_pci\n")
    etc("etc/sysctl.d", None)
    etc("etc/sysctl.d/90-pve.conf", "net.ipv4.ip_forward = 1\nvm.swappiness = 10\n")
    etc("etc/initramfs-tools", None)
    etc("etc/initramfs-tools/modules", "# modules for the initramfs\n")
    etc("etc/vzdump.conf", "#tmpdir: DIR\n#bwlimit: KBPS\nzstd: 4\n")
    etc(
        "etc/fstab",
        "# <file system> <mount point> <type> <options> <dump> <pass>\n"
        "proc /proc proc defaults 0 0\n",
    )
    etc("etc/lvm", None)
    etc("etc/lvm/lvm.conf", 'devices {\n\tglobal_filter=[ "r|/dev/zd.*|" ]\n}\n')
    etc("etc/zfs", None)
    items.append(_Item("etc/zfs/zpool.cache", bytes(range(256)) * 4, 0o644))
    items.append(_Item("etc/hostid", b"\x8a\x1f\x3c\x4d", 0o644))
    etc("etc/iscsi", None)
    etc(
        "etc/iscsi/iscsid.conf", "node.startup = manual\nnode.session.auth.password = chap\n", 0o600
    )
    etc("etc/ceph", None)
    items.append(_Item("etc/ceph/ceph.conf", "", 0o777, link="/etc/pve/ceph.conf"))
    etc("etc/apt", None)
    etc(
        "etc/apt/sources.list",
        "deb http://deb.debian.org/debian bookworm main contrib\n"
        "deb http://deb.debian.org/debian bookworm-updates main contrib\n"
        "deb http://security.debian.org bookworm-security main contrib\n",
    )
    etc("etc/apt/sources.list.d", None)
    etc(
        "etc/apt/sources.list.d/pve-enterprise.sources",
        "Types: deb\n"
        "URIs: https://enterprise.proxmox.com/debian/pve\nSuites: bookworm\n"
        "Components: pve-enterprise\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n",
    )
    etc(
        "etc/apt/sources.list.d/ceph.sources",
        "Types: deb\nURIs: http://download.proxmox.com/"
        "debian/ceph-reef\nSuites: bookworm\nComponents: no-subscription\n",
    )
    etc("etc/apt/auth.conf.d", None, 0o755)
    etc(
        "etc/apt/auth.conf.d/pve.conf",
        "machine enterprise.proxmox.com login pve-sub password hunter2\n",
        0o600,
    )
    etc(
        "etc/crontab",
        "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    )
    etc("etc/cron.d", None)
    etc("etc/cron.d/zfsutils-linux", "24 0 8-14 * * root /usr/lib/zfs-linux/scrub\n")
    etc("etc/cron.d/pve-conf-backup", "30 3 * * * root /usr/local/bin/pve-housekeeping\n")
    etc("etc/ssh", None)
    etc(
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n"
        "KbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding no\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n",
    )
    etc("etc/ssh/sshd_config.d", None)
    etc("etc/ssh/sshd_config.d/hardening.conf", "PasswordAuthentication no\n")
    etc("etc/ssh/ssh_config", "Host *\n    SendEnv LANG LC_*\n    HashKnownHosts yes\n")
    etc("etc/ssh/ssh_host_ed25519_key", _fake_key(f"hostkey-{node}"), 0o600)
    etc(
        "etc/ssh/ssh_host_ed25519_key.pub",
        f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{node} root@{node}\n",
    )
    etc("etc/postfix", None)
    etc(
        "etc/postfix/main.cf",
        f"myhostname={node}.lab.example.org\nrelayhost = [smtp.example.org]:587\n"
        "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd\n",
    )
    etc("etc/postfix/sasl_passwd", "[smtp.example.org]:587 pve@example.org:mailpass\n", 0o600)
    etc("etc/aliases", "postmaster: root\nroot: admin@example.org\n")
    etc("var/spool/cron/crontabs", None, 0o1730)
    etc(
        "var/spool/cron/crontabs/root",
        "# m h dom mon dow command\n0 4 * * 0 /usr/local/bin/pve-housekeeping --weekly\n",
        0o600,
    )
    etc("root", None, 0o700)  # as on a real node: other users cannot look inside
    etc("root/.ssh", None, 0o700)
    items.append(
        _Item("root/.ssh/authorized_keys", "", 0o777, link="/etc/pve/priv/authorized_keys")
    )
    etc("root/.ssh/config", "Host pbs\n    HostName 10.20.0.50\n    User root\n", 0o600)
    etc("root/.ssh/id_rsa", _fake_key(f"root-id-{node}"), 0o600)
    etc("usr/local/bin", None)
    etc(
        "usr/local/bin/pve-housekeeping",
        "#!/bin/sh\n# prune old ISO images\nfind /mnt/pve/isos -name '*.iso' -mtime +365 -print\n",
        0o755,
    )
    return items


def write_items(root: Path, items: list[_Item], *, chown: bool | None = None) -> None:
    """Write ``items`` below ``root``; set owners when running as root (or ``chown``)."""
    use_chown = os.geteuid() == 0 if chown is None else chown
    for item in items:
        target = root / item.path if item.path else root
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.link is not None:
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(item.link, target)
            if use_chown:
                os.lchown(target, item.uid, item.gid)
            continue
        if item.content is None:
            target.mkdir(parents=True, exist_ok=True)
        else:
            data = item.content.encode() if isinstance(item.content, str) else item.content
            target.write_bytes(data)
        if use_chown:
            os.chown(target, item.uid, item.gid)
        os.chmod(target, item.mode)
    # Parent directories created along the way keep default modes; fix the
    # ones listed afterwards so children could be written first.
    for item in items:
        if item.content is None and item.link is None:
            os.chmod(root / item.path if item.path else root, item.mode)


class DemoNode:
    """A simulated node in a directory, for the ``local:`` transport."""

    def __init__(self, root: Path, name: str = "pve1") -> None:
        self.root = root
        self.name = name

    def create(self) -> bool:
        """Write the tree unless it exists; return True if it was written."""
        if (self.root / "etc" / "pve" / ".version").exists():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        write_items(self.root, node_items(self.name if self.name in FIXTURE_NODES else "pve1"))
        return True

    def edit_something(self) -> str:
        """Make one realistic change (they rotate) and say what it was."""
        state = self.root / ".demo-edits"
        number = int(state.read_text()) if state.exists() else 0
        state.write_text(str(number + 1))
        configs = sorted((self.root / "etc/pve/nodes").glob("*/qemu-server/*.conf"))
        step = number % 4
        if step == 0:
            target = configs[number % len(configs)]
            lines = target.read_text().splitlines()
            for index, line in enumerate(lines):
                if line.startswith("memory: "):
                    memory = int(line.split()[1])
                    lines[index] = f"memory: {memory * 2 if memory < 65536 else 2048}"
            target.write_text("\n".join(lines) + "\n")
            what = "memory"
        elif step == 1:
            target = self.root / "etc/pve/storage.cfg"
            target.write_text(
                target.read_text() + f"\ndir: scratch{number}\n\tpath /srv/scratch"
                f"{number}\n\tcontent backup,iso\n"
            )
            what = "a storage"
        elif step == 2:
            target = self.root / "etc/pve/firewall/cluster.fw"
            target.write_text(
                target.read_text() + f"IN ACCEPT -source 10.20.{number}.0/24 -p tcp "
                "-dport 9100 -log nolog\n"
            )
            what = "a firewall rule"
        else:
            target = self.root / "etc/network/interfaces"
            text = target.read_text()
            old, new = ("2-4094", "2-1000") if "2-4094" in text else ("2-1000", "2-4094")
            target.write_text(text.replace(f"bridge-vids {old}", f"bridge-vids {new}"))
            what = "VLANs of vmbr0"
        return f"/{target.relative_to(self.root)} ({what})"
