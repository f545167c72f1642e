"""Opening state.db for a command, and what each repository keeps to rebuild it.

state.db holds what git cannot (how to reach each host, the run log, users,
the audit trail), but the history is in the repositories. A state.db that is
missing, empty or unreadable while repositories hold history must never be
replaced by a fresh empty one without a word: every command (and ``pvegit
serve``) refuses to start and says how to get the state back. To make that
possible, each snapshot writes the host's settings into its repository's
config (``[pvegit]``, see docs/repository-layout.md); ``pvegit rebuild-state``
(rebuild.py) reads them back.
"""

from __future__ import annotations

import json
from pathlib import Path

from pvegit.errors import StateDamaged
from pvegit.home import Home
from pvegit.store import Host, Store

_REBUILD_ADVICE = (
    "pvegit will not start with an empty state over existing history. Stop pvegit, then "
    "either put back a copy of state.db (from a backup of {root}), or run `pvegit "
    "rebuild-state`: it moves what is there aside and rebuilds the hosts and their runs from "
    "the repositories (web users, API tokens and pinned host keys cannot be rebuilt: each "
    "host must be trusted again with `pvegit host trust NAME`)"
)


def repositories_with_history(home: Home) -> list[Path]:
    """The repositories under repos/ that hold (or held) commits: a ref, a reflog or a pack."""
    if not home.repos_dir.is_dir():
        return []
    return [
        path
        for path in sorted(home.repos_dir.glob("*.git"))
        if (path / "refs" / "heads" / "main").exists()
        or (path / "packed-refs").exists()
        or (path / "logs" / "refs" / "heads" / "main").exists()
        or any((path / "objects" / "pack").glob("pack-*.pack"))
    ]


def state_problem(home: Home) -> str | None:
    """What is wrong with state.db given the repositories, before opening it; None if nothing.

    Missing or 0 bytes (SQLite would take it for a new, empty database) while
    repositories hold history is wrong; an unreadable one is found on opening.
    """
    path = home.state_path
    if path.exists() and path.stat().st_size > 0:
        return None
    repositories = repositories_with_history(home)
    if not repositories:
        return None
    what = "is missing" if not path.exists() else "is empty (0 bytes)"
    return f"{path} {what}, but {_describe(repositories)}"


def _describe(repositories: list[Path]) -> str:
    names = ", ".join(path.name.removesuffix(".git") for path in repositories[:5])
    more = f" and {len(repositories) - 5} more" if len(repositories) > 5 else ""
    return f"repos/ holds the history of {len(repositories)} host(s) ({names}{more})"


def is_blank(store: Store) -> bool:
    """True for a state that never recorded anything: no host, no run, no audit entry."""
    row = store.query(
        "SELECT EXISTS(SELECT 1 FROM hosts) OR EXISTS(SELECT 1 FROM runs)"
        " OR EXISTS(SELECT 1 FROM audit) AS anything"
    )[0]
    return not row["anything"]


def open_state(home: Home) -> Store:
    """Initialize the home if needed and open its state.db; the way every command starts.

    Raises StateDamaged, creating nothing, when state.db is missing, empty,
    unreadable or blank (what an old pvegit silently recreated) while the
    repositories hold history. A fresh home (no repositories) just works.
    """
    home.initialize()
    problem = state_problem(home)
    if problem:
        raise StateDamaged(f"{problem}. {_REBUILD_ADVICE.format(root=home.root)}")
    store = Store(home.state_path)
    repositories = repositories_with_history(home)
    if repositories and is_blank(store):
        store.close()
        raise StateDamaged(
            f"{home.state_path} holds no host, run or audit entry, but "
            f"{_describe(repositories)}. {_REBUILD_ADVICE.format(root=home.root)}"
        )
    return store


def settings_of(host: Host) -> dict[str, str]:
    """The host's settings as kept in its repository's config (no host key: that is trust)."""
    settings = {
        "host": host.name,
        "address": host.address,
        "port": str(host.port),
        "user": host.user,
        "categories": json.dumps(list(host.categories)),
        "includes": json.dumps(list(host.includes)),
        "excludes": json.dumps(list(host.excludes)),
    }
    if host.identity:
        settings["identity"] = host.identity
    if host.schedule:
        settings["schedule"] = host.schedule
    return settings
