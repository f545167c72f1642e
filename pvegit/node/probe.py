"""The probe: what a node says about itself before anything is collected.

Its name, the login's uid and the state of /etc/pve (there, a pmxcfs mount,
readable, or why not), asked of the collector (program.py) and parsed
here, with the plain-words reason a snapshot is refused when pmxcfs is not
serving the cluster file system.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvegit.config.selection import Selection
from pvegit.errors import CollectError, RefusedError
from pvegit.node.collector import needs_pve, request, request_input
from pvegit.node.program import PVE_PROBE_SECONDS
from pvegit.node.transport import MiB, OutputLimit, Transport
from pvegit.textsafe import printable

# What a crashed pmxcfs answers to every access of its still-mounted /etc/pve.
PMXCFS_CRASHED = "Transport endpoint is not connected"


@dataclass(frozen=True)
class Probe:
    """What the node said about itself before anything was collected."""

    hostname: str
    uid: int
    pve_directory: bool
    pve_mounted: bool
    pve_readable: bool
    pve_error: str = ""  # why /etc/pve could not be read ("hung" when it did not answer)

    def pmxcfs_problem(self, *, live: bool) -> str | None:
        """Why /etc/pve is not pmxcfs serving the cluster file system, in plain words
        (None when it is). ``live``: the node itself, not a rescued disk."""
        if not self.pve_directory:
            return (
                "/etc/pve does not exist: this is not a Proxmox VE node (or the path is wrong); "
                "leave out the 'cluster' category to back up a plain Debian host"
            )
        if self.pve_error.startswith("hung"):
            return (
                f"pmxcfs is not answering: /etc/pve did not respond within {PVE_PROBE_SECONDS} s "
                "(pmxcfs hung). On the node: systemctl status pve-cluster; "
                "journalctl -u pve-cluster; systemctl restart pve-cluster"
            )
        if PMXCFS_CRASHED in self.pve_error:
            return (
                "pmxcfs has crashed: /etc/pve is still mounted but every access fails "
                f"({PMXCFS_CRASHED}). On the node: journalctl -u pve-cluster (why it died), then "
                "systemctl restart pve-cluster"
            )
        if live and not self.pve_mounted:
            return (
                "pmxcfs is not running: /etc/pve is a plain empty directory, not the cluster "
                "file system. On the node: systemctl status pve-cluster"
            )
        if not self.pve_readable:
            if "Permission denied" in self.pve_error:
                return (
                    f"the login (uid {self.uid}) may not read /etc/pve ({self.pve_error}): "
                    "log in as root, or add the backup user to the group www-data"
                )
            where = (
                f"mounted but unreadable ({self.pve_error or 'no .version'})"
                if self.pve_mounted
                else "empty"
            )
            return (
                f"/etc/pve is {where}: pmxcfs is not serving the cluster file system. On the "
                "node: systemctl status pve-cluster"
                + ("" if live else "; for a rescued disk use its config.db")
            )
        return None


def parse_probe(stderr: bytes) -> Probe:
    """The Probe in the "pvegit-probe" lines of ``stderr``; CollectError when they are missing."""
    values: dict[str, str] = {}
    # What the node says about itself is shown to users: no control characters.
    for line in printable(stderr.decode("utf-8", "replace"), lines=True).splitlines():
        if line.startswith("pvegit-probe "):
            body = line[len("pvegit-probe ") :]
            whole = body.startswith(("hostname=", "pve_error="))
            for field_text in [body] if whole else body.split():
                key, _, value = field_text.partition("=")
                values[key] = value
    try:
        return Probe(
            hostname=values.get("hostname", "").strip(),
            uid=int(values["uid"]),
            pve_directory=values.get("pve_directory") == "1",
            pve_mounted=values.get("pve_mounted") == "1",
            pve_readable=values.get("pve_readable") == "1",
            pve_error=values.get("pve_error", "").strip(),
        )
    except (KeyError, ValueError) as err:
        raise CollectError(
            "the node did not answer pvegit's probe (is the login shell POSIX, and "
            "coreutils installed?)"
        ) from err


# The probe answers on stderr (kept within MAX_STDERR); its stdout stays empty.
_PROBE_OUTPUT = OutputLimit(MiB, "pvegit's probe")
# One line (`pveversion -v` would be ~2 KiB), shown as it is on a page and a terminal.
_VERSION_OUTPUT = OutputLimit(64 * 1024, "the PVE version (pveversion)")


def probe_node(transport: Transport) -> Probe:
    """Ask the node for its name, the login's uid and the state of /etc/pve.

    Raises CollectError (OutputTooLarge for a node that floods the answer) or
    ConnectError.
    """
    asked = [("root", transport.root)]
    result = transport.run(
        request(transport, "probe", asked), request_input(transport, asked), limit=_PROBE_OUTPUT
    )
    if result.exit_code == 98:
        raise CollectError(f"the node has no directory {transport.root}")
    return parse_probe(result.stderr)


def pve_version(transport: Transport) -> str:
    """What ``pveversion`` says on the node, "" when it says nothing (not a PVE node).

    Raises OutputTooLarge past 64 KiB, ConnectError when the connection drops.
    """
    result = transport.run(request(transport, "pveversion"), limit=_VERSION_OUTPUT)
    return result.stdout.decode("utf-8", "replace").strip()


def check_pmxcfs(probe: Probe, transport: Transport, selection: Selection) -> None:
    """Refuse to snapshot a node whose /etc/pve is not pmxcfs serving (it would look empty,
    or fail half way and look deleted)."""
    if not needs_pve(selection):
        return
    problem = probe.pmxcfs_problem(live=transport.live)
    if problem is not None:
        raise RefusedError(f"{problem}. Nothing was committed.")
