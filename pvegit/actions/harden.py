"""Make pvegit's key read-only on a node: the collector installed, the entry restricted.

``pvegit host add --install-key`` and ``pvegit host harden`` (and the host
page's button) log in once with a root shell: root's password, or pvegit's
key while it is still unrestricted. Over that login the collector
(node/program.py) is written to /usr/local/sbin/pvegit-collect and every
line of the login's authorized_keys holding pvegit's key is replaced by one
entry ``restrict,command="/usr/local/sbin/pvegit-collect" <key>``. Then a
fresh login with the key proves it: the collector answers, and a command is
refused. On a PVE cluster node authorized_keys is the cluster-wide
/etc/pve/priv/authorized_keys: the entry is then the same on every node,
and each node needs the collector (``harden`` each, with root's password).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pvegit.actions.restore_access import install_restore_access, restore_authorized_line
from pvegit.config.home import Home
from pvegit.config.selection import Selection, resolve_selection
from pvegit.errors import AuthError, CollectError, ConfigError, PvegitError
from pvegit.node.access import RESTRICTED_KINDS, UNRESTRICTED
from pvegit.node.allowlist import ALLOW_MAX_BYTES, ALLOW_PATH, allow_list_text
from pvegit.node.metadata import is_pmxcfs_path
from pvegit.node.program import INSTALLED_PATH, LOG_FILE, REFUSED, program_text
from pvegit.node.transport import MiB, OutputLimit, Transport
from pvegit.state.store import Host, Store

_WRITTEN = OutputLimit(MiB, "the path of authorized_keys (readlink)")
_REFUSAL = OutputLimit(MiB, "the collector's refusal")


def collect_authorized_line(home: Home) -> str:
    """The authorized_keys entry of pvegit's collect key: only the collector runs."""
    return f'restrict,command="{INSTALLED_PATH}" {home.public_key()}'


# stdin: the entry, pvegit's key blob (which lines to replace), the allow-list's line
# count and its lines (`read` takes a pipe's bytes one line at a time, exactly), then the
# program. The answer (stdout) is the real path of authorized_keys, printed first and read
# within its limit: a node that floods it has nothing changed yet when pvegit stops reading.
_INSTALL = f"""umask 077
IFS= read -r entry || exit 91
IFS= read -r blob || exit 91
mkdir -p ~/.ssh || exit 93
readlink -f ~/.ssh/authorized_keys || exit 93
IFS= read -r n || exit 91
case "$n" in ""|*[!0-9]*) exit 91 ;; esac
umask 022
a=$(mktemp {ALLOW_PATH}.XXXXXX) || exit 94
i=0
while [ "$i" -lt "$n" ]; do
  IFS= read -r line || {{ rm -f "$a"; exit 91; }}
  printf '%s\\n' "$line" >>"$a"; i=$((i + 1))
done
if chmod 0644 "$a" && chown 0:0 "$a" && mv -f "$a" {ALLOW_PATH}; then :
else rm -f "$a"; exit 94; fi
mkdir -p /usr/local/sbin || exit 92
t=$(mktemp /usr/local/sbin/.pvegit-collect.XXXXXX) || exit 92
if cat >"$t" && chmod 0755 "$t" && chown 0:0 "$t" && mv -f "$t" {INSTALLED_PATH}; then :
else rm -f "$t"; exit 92; fi
if [ ! -e {LOG_FILE} ]; then touch {LOG_FILE} && chmod 0600 {LOG_FILE}; fi
[ "$(id -u | head -c 32)" = 0 ] || chown "$(id -un | head -c 256)" {LOG_FILE} 2>/dev/null
umask 077
# Every answer a node's own command gives is cut to a path's length: a command that
# floods would otherwise keep the login shell reading it (bash, for minutes).
real=$(readlink -f ~/.ssh/authorized_keys | head -c 4096)
[ -n "$real" ] || exit 93
k=$(mktemp "${{real%/*}}/.pvegit-keys.XXXXXX") || exit 93
{{ grep -vF -- "$blob" "$real" 2>/dev/null; printf '%s\\n' "$entry"; }} >"$k" &&
  mv -f "$k" "$real" || {{ rm -f "$k"; exit 93; }}
"""
_INSTALL_ERRORS = {
    92: f"could not write {INSTALLED_PATH} (log in as root: the collector is root's)",
    93: "could not rewrite ~/.ssh/authorized_keys",
    94: f"could not write the allow-list {ALLOW_PATH} (log in as root: the list is root's)",
}


def install_collector(transport: Transport, home: Home, selection: Selection) -> str:
    """Over a shell login (root's password, or the key while unrestricted): write the
    allow-list for ``selection``, install the collector and make pvegit's key's entry the
    restricted one. Returns the real path of the authorized_keys written. Raises
    AuthError when the node refuses a step."""
    blob = home.public_key().split()[1]
    allowed = allow_list_text(selection)
    if len(allowed.encode()) > ALLOW_MAX_BYTES:
        raise ConfigError(
            f"the host's selection makes an allow-list over {ALLOW_MAX_BYTES // MiB} MiB, "
            "more than the collector reads: use fewer includes or excludes"
        )
    stdin = (
        f"{collect_authorized_line(home)}\n{blob}\n{allowed.count(chr(10))}\n{allowed}"
        f"{program_text()}"
    ).encode()
    result = transport.run(_INSTALL, stdin, limit=_WRITTEN)
    if result.exit_code != 0:
        said = result.stderr.decode("utf-8", "replace").strip()
        what = _INSTALL_ERRORS.get(result.exit_code, f"the install failed ({result.exit_code})")
        raise AuthError(f"{transport.label}: {what}" + (f": {said}" if said else ""))
    return result.stdout.decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class Hardened:
    """What hardening a host did."""

    host: str
    written: str  # the real path of the authorized_keys rewritten ("" if nothing was to do)
    access: str
    restore_entry: bool = False  # the restore key's entry was installed too

    @property
    def cluster_wide(self) -> bool:
        """True when the entry went into the cluster-wide /etc/pve/priv/authorized_keys."""
        return is_pmxcfs_path(self.written)


class PasswordNeeded(PvegitError):
    """The key cannot open a shell any more (restricted): root's password is needed once."""


Connect = Callable[[Home, Host, str | None], Transport]


def _connect(home: Home, host: Host, password: str | None) -> Transport:
    from pvegit.node.ssh import SshTransport

    return SshTransport.connect(home, host, password=password)


def harden_host(
    home: Home,
    store: Store,
    host: Host,
    *,
    password: str | None = None,
    actor: str,
    connect: Connect = _connect,
) -> Hardened:
    """Turn ``host``'s entry for pvegit's key into the restricted one and prove it.

    The node's allow-list is written from the host's selection (allowlist.py).
    Without ``password`` pvegit's key must still open a shell (unrestricted);
    a host whose collector and allow-list are in place and current has nothing
    to do. Raises PasswordNeeded when only root's password can install or
    update the collector or the list, AuthError/ConnectError/CollectError as a
    login or step fails. The password is used for this one login and forgotten.
    """
    from pvegit.node.collector import allow_list_problem, ensure_access

    if host.is_local:
        raise PvegitError(f"{host.name} is this machine: there is no key to harden")
    selection = resolve_selection(host.categories, host.includes, host.excludes)
    transport = connect(home, host, password)
    try:
        if password is None:
            try:
                access = ensure_access(transport)
            except CollectError as err:
                raise PasswordNeeded(str(err)) from err
            if access in RESTRICTED_KINDS:
                store.record_access(host.name, access, transport.allow_list)
                listed = allow_list_problem(transport, selection)
                if listed is not None:
                    raise PasswordNeeded(listed)
                return Hardened(host.name, "", access)
        written = install_collector(transport, home, selection)
        # The restore key's restricted entry too, when the admin made one.
        restore_entry = restore_authorized_line(home) is not None
        if restore_entry:
            install_restore_access(transport, home)
    finally:
        transport.close()
    access, allow_list = prove_restricted(home, host, connect)
    store.record_access(host.name, access, allow_list)
    store.audit(actor, "host hardened", host.name, path=written, access=access)
    return Hardened(host.name, written, access, restore_entry)


def prove_restricted(home: Home, host: Host, connect: Connect = _connect) -> tuple[str, str]:
    """Log in with pvegit's key: the collector must answer and a command be refused.
    Returns the access kind and the node's allow-list digest; raises PvegitError when
    the key still opens a shell."""
    from pvegit.node.collector import ensure_access

    transport = connect(home, host, None)
    try:
        access = ensure_access(transport)
        allow_list = transport.allow_list or ""
        refused = transport.run("id", limit=_REFUSAL).exit_code == REFUSED
    finally:
        transport.close()
    if access == UNRESTRICTED or not refused:
        raise PvegitError(
            f"{host.name}: pvegit's key still opens a shell after the restricted entry was "
            "written: another authorized_keys file (authorized_keys2, or sshd's "
            "AuthorizedKeysFile) still holds it unrestricted; remove it there"
        )
    return access, allow_list
