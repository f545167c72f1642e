"""A simulated Proxmox VE 8 node outside /etc/pve: what a rebuild needs besides pmxcfs.

Network, storage, boot and kernel, APT, cron, SSH, mail, root's SSH folder and
a local script, with the owners and modes a node has.
"""

from __future__ import annotations

from pvegit.demo.tree import TreeItem, fake_key


def system_items(node: str, address: str, corosync: str) -> list[TreeItem]:
    """What a rebuild needs outside /etc/pve: network, storage, boot, APT, cron, SSH, mail."""
    items: list[TreeItem] = []

    def etc(
        path: str, content: str | None, mode: int | None = None, uid: int = 0, gid: int = 0
    ) -> None:
        items.append(
            TreeItem(
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
    etc("etc/corosync/authkey", fake_key("corosync"), 0o400)
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
    items.append(TreeItem("etc/zfs/zpool.cache", bytes(range(256)) * 4, 0o644))
    items.append(TreeItem("etc/hostid", b"\x8a\x1f\x3c\x4d", 0o644))
    etc("etc/iscsi", None)
    etc(
        "etc/iscsi/iscsid.conf", "node.startup = manual\nnode.session.auth.password = chap\n", 0o600
    )
    etc("etc/ceph", None)
    items.append(TreeItem("etc/ceph/ceph.conf", "", 0o777, link="/etc/pve/ceph.conf"))
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
    etc("etc/ssh/ssh_host_ed25519_key", fake_key(f"hostkey-{node}"), 0o600)
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
        TreeItem("root/.ssh/authorized_keys", "", 0o777, link="/etc/pve/priv/authorized_keys")
    )
    etc("root/.ssh/config", "Host pbs\n    HostName 10.20.0.50\n    User root\n", 0o600)
    etc("root/.ssh/id_rsa", fake_key(f"root-id-{node}"), 0o600)
    etc("usr/local/bin", None)
    etc(
        "usr/local/bin/pve-housekeeping",
        "#!/bin/sh\n# prune old ISO images\nfind /mnt/pve/isos -name '*.iso' -mtime +365 -print\n",
        0o755,
    )
    return items
