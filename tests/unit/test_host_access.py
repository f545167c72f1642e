"""hosts.access: added to an older state.db on opening, recorded without touching the
host's settings, shown in words by every face."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pvegit.node.access import access_words, needs_hardening
from pvegit.state.store import Host, Store

_OLD_HOSTS = """CREATE TABLE hosts (
    name TEXT PRIMARY KEY, address TEXT NOT NULL, port INTEGER NOT NULL DEFAULT 22,
    user TEXT NOT NULL DEFAULT 'root', identity TEXT, categories TEXT NOT NULL,
    includes TEXT NOT NULL DEFAULT '[]', excludes TEXT NOT NULL DEFAULT '[]', schedule TEXT,
    host_key_type TEXT, host_key TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
INSERT INTO hosts (name, address, categories, created_at, updated_at)
    VALUES ('pve1', '192.0.2.1', '["cluster"]', 1.0, 2.0);
"""


def test_an_older_state_gains_the_column_and_hosts_start_unknown(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(_OLD_HOSTS)
    store = Store(path)
    try:
        host = store.host("pve1")
        assert (host.access, host.access_kind, host.to_json()["access"]) == (
            "",
            "unknown",
            "unknown",
        )
        store.record_access("pve1", "unrestricted")
        again = store.host("pve1")
        assert again.access == "unrestricted" and again.updated_at == host.updated_at
        assert needs_hardening(again.access_kind)
        assert "pvegit host harden pve1" in access_words(again.access_kind, "pve1")
        store.add_host(Host("here", "local"))
        assert store.host("here").access_kind == "local"
    finally:
        store.close()


def test_the_allow_list_state_follows_the_host_selection() -> None:
    from dataclasses import replace

    from pvegit.config.selection import resolve_selection
    from pvegit.node.allowlist import NO_LIST, allow_list_digest, list_state, list_words

    host = Host("pve1", "192.0.2.1", categories=("cluster", "network"), access="restricted")
    current = allow_list_digest(resolve_selection(host.categories))
    assert list_state(host) is None  # no connection has told yet
    assert list_state(replace(host, allow_list=current)) == "current"
    assert list_words(replace(host, allow_list=current)) is None
    wider = replace(host, categories=(*host.categories, "secrets"), allow_list=current)
    assert list_state(wider) == "stale"
    assert "pvegit host harden pve1" in (list_words(wider) or "")
    assert list_state(replace(host, allow_list=NO_LIST)) == "missing"
    # An unrestricted key has no list to speak of: it is a root shell.
    assert list_state(replace(host, access="unrestricted", allow_list=current)) is None
