"""``pvegit restore-key``: the restore key (create, show, install on a node), and how
``pvegit restore`` asks for the second credential."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from dataclasses import replace

from pvegit.actions.restore_access import (
    RestoreCredential,
    create_restore_key,
    has_restore_key,
    install_restore_access,
    restore_authorized_line,
)
from pvegit.cli import EXIT_FAILED, EXIT_OK
from pvegit.cli.common import actor, open_home
from pvegit.config.home import Home
from pvegit.errors import AuthError, ConfigError
from pvegit.state.store import Store


def read_secret(prompt: str, from_stdin: bool) -> str:
    """A passphrase or password: the first line of stdin, or asked on the terminal
    (never echoed). Raises ConfigError when there is nowhere to read it from."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError(f"not on a terminal: cannot ask for the {prompt.rstrip(': ')}")
    return getpass.getpass(prompt)


def cmd_restore_key(arguments: argparse.Namespace) -> int:
    home, store = open_home(arguments)
    if arguments.key_command == "create":
        passphrase = read_secret("passphrase for the new restore key: ", arguments.passphrase_stdin)
        if not arguments.passphrase_stdin:
            again = getpass.getpass("the passphrase again: ")
            if again != passphrase:
                raise ConfigError("the two passphrases differ: no restore key was made")
        try:
            public = create_restore_key(home, passphrase)
        finally:
            del passphrase
        store.audit(actor(), "restore key created", None, public_key=public)
        print(
            f"restore key: {home.restore_key_path} (encrypted; pvegit does not keep the passphrase)"
        )
        print(f"public key: {public}")
        print("next, for each host: pvegit restore-key install NAME")
        return EXIT_OK
    line = restore_authorized_line(home)
    if line is None:
        print("no restore key: create one with 'pvegit restore-key create'", file=sys.stderr)
        return EXIT_FAILED
    if arguments.key_command == "show":
        print(line)
        return EXIT_OK
    return _install(arguments, home, store)


def _install(arguments: argparse.Namespace, home: Home, store: Store) -> int:
    from pvegit.node.ssh import SshTransport

    host = store.host(arguments.name)
    if host.host_key is None:
        raise ConfigError(f"pin the host key first: pvegit host trust {host.name}")
    if arguments.password_stdin or arguments.root_password:
        password = read_secret(f"password of root@{host.address}: ", arguments.password_stdin)
        try:
            transport = SshTransport.connect(home, replace(host, user="root"), password=password)
        finally:
            del password  # never stored, never logged
    else:
        transport = SshTransport.connect(home, host)  # a root key that is still unrestricted
    try:
        written = install_restore_access(transport, home)
    except AuthError as err:
        if arguments.password_stdin or arguments.root_password:
            raise
        raise AuthError(
            f"{err}. pvegit's key is not a root shell there: use root's password, "
            f"pvegit restore-key install {host.name} --root-password"
        ) from err
    finally:
        transport.close()
    store.audit(actor(), "restore key installed", host.name, path=written)
    print(f"installed /usr/local/sbin/pvegit-restore and the restore key's entry in {written}")
    return EXIT_OK


def credential_from(arguments: argparse.Namespace, host_address: str) -> RestoreCredential | None:
    """The credential ``pvegit restore`` was given on its command line (None: none)."""
    if arguments.passphrase_stdin:
        return RestoreCredential(passphrase=read_secret("", True))
    if arguments.root_password or arguments.root_password_stdin:
        prompt = f"password of root@{host_address}: "
        return RestoreCredential(root_password=read_secret(prompt, arguments.root_password_stdin))
    return None


def asker(home_has_key: bool) -> Callable[[str], RestoreCredential | None]:
    """What ``pvegit restore`` does when the node needs the second credential and none was
    given: ask the restore key's passphrase on the terminal (None: no terminal or no key)."""

    def ask(reason: str) -> RestoreCredential | None:
        if not home_has_key or not sys.stdin.isatty():
            return None
        print("this node's key only reads: the restore needs the restore key", file=sys.stderr)
        return RestoreCredential(passphrase=getpass.getpass("restore key passphrase: "))

    return ask


__all__ = ["asker", "cmd_restore_key", "credential_from", "has_restore_key", "read_secret"]
