"""Opening state.db for a command, and what each repository keeps to rebuild it.

state.db holds what git cannot (how to reach each host, the run log, users,
the audit trail), but the history is in the repositories. A state.db that is
missing, empty or unreadable while repositories hold history must never be
replaced by a fresh empty one without a word: every command (and ``pvegit
serve``) refuses to start and says how to get the state back. To make that
possible, each snapshot writes the host's settings into its repository's
config (``[pvegit]``, see docs/repository-layout.md); ``pvegit rebuild-state``
(actions/rebuild.py) reads them back.
"""

from __future__ import annotations

import json
from pathlib import Path

from pvegit.config.home import Home
from pvegit.config.host import Host
from pvegit.errors import StateDamaged
from pvegit.state.store import Store

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
    repositories hold history is wrong, and so is a file shorter than its own
    header says (cut short: SQLite reads the missing pages as zeros, or from
    the WAL, and may not notice for a while); other damage shows on opening.
    """
    path = home.state_path
    if path.exists() and path.stat().st_size > 0:
        return _cut_short(path)
    repositories = repositories_with_history(home)
    if not repositories:
        return None
    what = "is missing" if not path.exists() else "is empty (0 bytes)"
    return f"{path} {what}, but {_describe(repositories)}"


_HEADER = b"SQLite format 3\0"


def _cut_short(path: Path) -> str | None:
    """SQLite's header: its magic, and (bytes 16-17 page size, 28-31 pages) the file's size.

    The count is valid when the change counter (24-27) equals the "version
    valid for" field (92-95). The file holds at least the pages of its last
    checkpoint; newer pages may be only in the WAL, so a longer count in the
    WAL is no damage, a shorter file than its own header is.
    """
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_HEADER):
        # Checked before SQLite opens it: with a WAL at its side SQLite would read
        # page 1 from the WAL and, closing, write the WAL over what is left.
        zeros = "holds only zero bytes at its start" if not header.strip(b"\0") else "is not"
        return (
            f"{path} {zeros} an SQLite database header (what a power cut or a failing disk "
            "can leave)"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] != header[92:96] or not pages:
        return None
    size = path.stat().st_size
    if size < pages * page_size:
        return (
            f"{path} is cut short: {size} bytes where its header counts {pages} pages of "
            f"{page_size} bytes (what a power cut or a full disk during a write can leave)"
        )
    return None


def _describe(repositories: list[Path]) -> str:
    names = ", ".join(path.name.removesuffix(".git") for path in repositories[:5])
    more = f" and {len(repositories) - 5} more" if len(repositories) > 5 else ""
    return f"repos/ holds the history of {len(repositories)} host(s) ({names}{more})"


def is_blank(store: Store) -> bool:
    """True for a state that never recorded anything: no host, no run, no audit entry."""
    return not store.records_anything()


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
