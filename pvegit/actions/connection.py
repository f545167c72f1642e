"""Testing the connection to a node: its host key, the login, and what the node says.

Two depths: ``check_node`` logs in (with the pinned key) and asks the node who
and what it is, step by step (``pvegit host test``); ``check_connection`` first
reads the key the node offers and compares it with the pinned one, and logs in
only when it is the trusted key (the web's "test connection"). Both return
frozen results that the faces word in their own way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from pvegit.actions.trust import OfferedKey, pinned_fingerprint, read_offered_key
from pvegit.config.home import Home
from pvegit.errors import PvegitError
from pvegit.node.access import UNRESTRICTED, access_words
from pvegit.state.store import Host, Store


@dataclass(frozen=True)
class LoggedIn:
    """The node was reached and let ``user`` in."""

    user: str
    seconds: float  # from connecting to logged in

    ok = True


@dataclass(frozen=True)
class Identified:
    """What the node says it is: its hostname and the uid pvegit runs as there."""

    hostname: str
    uid: int

    ok = True


@dataclass(frozen=True)
class VersionRead:
    """The PVE version the node reports; None when it does not say (a warning only)."""

    version: str | None

    @property
    def ok(self) -> bool:
        return bool(self.version)


@dataclass(frozen=True)
class PmxcfsChecked:
    """Whether pmxcfs serves /etc/pve; ``problem`` says why not."""

    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class AccessChecked:
    """How pvegit's key reaches the node (node/collector.py's kinds); an unrestricted key
    (a root shell) only warns, with what hardens it."""

    access: str
    host: str
    allow_list: str | None = None  # what is wrong with the node's allow-list, if anything

    @property
    def ok(self) -> bool:
        return self.access != UNRESTRICTED and self.allow_list is None

    def describe(self) -> str:
        """One line for every face."""
        words = access_words(self.access, self.host)
        return words if self.allow_list is None else f"{words}; but {self.allow_list}"


@dataclass(frozen=True)
class Stopped:
    """The test stopped here: the login failed (``connecting``), or the node answered
    wrongly or stopped answering."""

    problem: str
    connecting: bool

    ok = False


Step = LoggedIn | AccessChecked | Identified | VersionRead | PmxcfsChecked | Stopped


def passed(steps: tuple[Step, ...]) -> bool:
    """True when no step failed; an unknown PVE version and an unrestricted key only warn."""
    return all(step.ok or isinstance(step, VersionRead | AccessChecked) for step in steps)


def check_node(home: Home, host: Host) -> tuple[Step, ...]:
    """Log in to ``host`` and ask it who and what it is; return the steps taken, in order.

    Never raises a PvegitError: a failure is the last step (``Stopped``). An
    unknown or changed host key stops the login like any refused connection.
    """
    from pvegit.config.selection import resolve_selection
    from pvegit.node.collector import allow_list_problem, ensure_access
    from pvegit.node.probe import probe_node, pve_version
    from pvegit.node.transport import open_transport

    started = time.monotonic()
    try:
        transport = open_transport(home, host)
    except PvegitError as err:
        return (Stopped(str(err), connecting=True),)
    steps: list[Step] = [LoggedIn(host.user, time.monotonic() - started)]
    try:
        access = ensure_access(transport)
        selection = resolve_selection(host.categories, host.includes, host.excludes)
        steps.append(AccessChecked(access, host.name, allow_list_problem(transport, selection)))
        probe = probe_node(transport)
        steps.append(Identified(probe.hostname, probe.uid))
        steps.append(VersionRead(pve_version(transport)))
        steps.append(PmxcfsChecked(probe.pmxcfs_problem(live=transport.live)))
    except PvegitError as err:  # the node answered wrongly, or stopped answering
        steps.append(Stopped(str(err), connecting=False))
    finally:
        transport.close()
    return tuple(steps)


# "unknown": the node could not be reached to read its key.
ConnectionState = Literal["local", "new", "changed", "trusted", "unknown"]


@dataclass(frozen=True)
class ConnectionCheck:
    """What testing the connection to a host found."""

    state: ConnectionState
    offered: OfferedKey | None = None  # the key the node offers (SSH hosts that answered)
    pinned_fingerprint: str | None = None
    problem: str | None = None  # why the node could not be reached ("unknown")
    steps: tuple[Step, ...] = ()  # the login and probe, done for a trusted key or a local host

    @property
    def reached(self) -> bool:
        return self.state != "unknown"


def check_connection(home: Home, store: Store, host: Host, *, actor: str) -> ConnectionCheck:
    """Read the node's host key, compare it with the pinned one, and only with the
    trusted key (or on a local host) log in and probe. Audits "connection tested".

    Never logs in to a node whose key is new or changed: a person decides first.
    """
    result = _check(home, host)
    store.audit(actor, "connection tested", host.name, result=result.state, reached=result.reached)
    return result


def _check(home: Home, host: Host) -> ConnectionCheck:
    if host.is_local:
        return ConnectionCheck("local", steps=check_node(home, host))
    try:
        offered = read_offered_key(host)
    except PvegitError as err:
        return ConnectionCheck("unknown", problem=str(err))
    state = offered.state_for(host)
    pinned = pinned_fingerprint(host)
    if state != "trusted":
        return ConnectionCheck(state, offered, pinned)
    return ConnectionCheck(state, offered, pinned, steps=check_node(home, host))
