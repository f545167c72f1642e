"""A simulated Proxmox VE 8 cluster node, as a list of tree items.

A three-node cluster with guests, storage, users, firewall, HA, SDN, the
secrets under priv/, the pmxcfs status files and built-in symlinks, and the
configuration outside /etc/pve that a rebuild needs (pve8_system.py). Owners
and modes are the ones a node has (tree.py writes them).
"""

from __future__ import annotations

import hashlib
import random

from pvegit.demo.pve8_system import system_items
from pvegit.demo.tree import WWW_DATA_GID, TreeItem, fake_key


def cluster_node_items(
    node: str,
    members: tuple[str, ...],
    cluster_name: str,
    first_host: int,
    *,
    guests: int = 150,
    seed: int = 7,
) -> list[TreeItem]:
    """The PVE 8 tree of ``node`` in cluster ``cluster_name`` of ``members``, whose
    addresses are 10.20.0.``first_host`` and up."""
    rng = random.Random(seed)
    index = members.index(node) if node in members else 0
    address = f"10.20.0.{first_host + index}"
    corosync = corosync_conf(members, cluster_name, first_host)
    return [
        *_pve_items(node, members, cluster_name, first_host, corosync, guests, rng),
        *system_items(node, address, corosync),
    ]


def corosync_conf(members: tuple[str, ...], cluster_name: str, first_host: int) -> str:
    """corosync.conf of cluster ``cluster_name``: ``members`` at 10.20.0.``first_host`` and up."""
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
    return corosync


def _pve_items(
    node: str,
    members: tuple[str, ...],
    cluster_name: str,
    first_host: int,
    corosync: str,
    guests: int,
    rng: random.Random,
) -> list[TreeItem]:
    """/etc/pve as pmxcfs shows it on ``node``: cluster files, guests, built-in links, priv/."""
    pve_files: list[TreeItem] = []

    def pve(path: str, content: str | bytes | None, private: bool = False) -> None:
        mode = (0o700 if private else 0o750) if content is None else (0o600 if private else 0o640)
        pve_files.append(TreeItem(f"etc/pve/{path}", content, mode, 0, WWW_DATA_GID))

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
    pve("pve-www.key", fake_key("www"))
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
        pve(f"nodes/{host}/pve-ssl.key", fake_key(f"ssl-{host}"))
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
        pve_files.append(TreeItem(f"etc/pve/{link}", "", 0o777, 0, WWW_DATA_GID, link=target))
    pve("priv", None, private=True)
    pve("priv/authkey.key", fake_key("authkey"), private=True)
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
    pve("priv/pve-root-ca.key", fake_key("root-ca"), private=True)
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
    return pve_files


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
