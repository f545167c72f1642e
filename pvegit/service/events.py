"""Which runs make which notifications: failed once per streak, recovered, changed, stale.

The alert state of each host is kept in state.db (``alerts``), so a host that
keeps failing is reported once per streak, whichever process ran it (serve,
cron, the CLI). A ``changed`` event carries the changed files and a short diff
through the one content model (secret files only named, secret lines masked).
"""

from __future__ import annotations

from pvegit.config.home import Home
from pvegit.errors import PvegitError
from pvegit.git.repo import HostRepository
from pvegit.layout import METADATA_PATH
from pvegit.node.tarstream import display_path
from pvegit.service.notify import Event
from pvegit.state.store import Run, RunStatus, Store

MAX_DIFF_LINES = 40
# Files whose content a notification leaves out, by the content model's kind.
_UNSENT = {
    "secret": " (secret, content not sent)",
    "too-large": " (too large, content not sent)",
    "binary": "",
}


def change_summary(home: Home, host: str, commit_id: str, subject: str) -> str:
    """The changed files and a short diff of a commit (pvegit.content.filediff's model: secret
    files only named, secret lines masked)."""
    # Loaded here, not with the module: an unchanged run (most CLI runs) never diffs.
    from pvegit.content.filediff import read_diff

    lines = [subject, ""]
    shown = 0
    with HostRepository(home.repo_path(host)) as repository:
        commit = repository.commit(commit_id)
        parent = commit.parents[0] if commit.parents else None
        if parent is None:
            return f"{subject}\n\n{commit.subject}"
        for change in repository.changes(parent, commit_id):
            if change.path == METADATA_PATH:
                continue
            found = read_diff(repository, change)
            # The name is the node's: one line (a newline in it must not forge a diff line).
            shown_path = "/" + display_path(change.path)
            if found.kind != "text":
                lines.append(f"{change.change.value}: {shown_path}{_UNSENT[found.kind]}")
                continue
            masked = f", {found.masked} masked" if found.masked else ""
            lines.append(
                f"{change.change.value}: {shown_path} (+{found.added} -{found.removed}{masked})"
            )
            for line in found.changed_lines():
                if shown < MAX_DIFF_LINES:
                    lines.append(f"    {line}")
                shown += 1
    if shown > MAX_DIFF_LINES:
        lines.append(f"    … {shown - MAX_DIFF_LINES} more changed lines")
    return "\n".join(lines)


def events_for_run(home: Home, store: Store, run: Run, retries: int) -> list[Event]:
    """What a finished run is worth telling: changed, failed (after retries), recovered.

    A failing host is reported once per failing streak, not on every try;
    the alert state lives in the store so a restart does not repeat it.
    """
    events: list[Event] = []
    state = store.alert_state(run.host)
    if run.commit_id and run.status in (RunStatus.CHANGED, RunStatus.PARTIAL):
        subject = f"{run.host}: configuration changed"
        try:
            message = change_summary(home, run.host, run.commit_id, subject)
        except PvegitError as err:
            message = f"{subject} (summary unavailable: {err})"
        events.append(Event("changed", run.host, subject, message, run.id, run.commit_id))
    if run.is_failure:
        streak = 0
        for item in store.runs(run.host, limit=retries + 2):
            if not item.is_failure:
                break
            streak += 1
        final = run.failure != "transient" or streak > retries
        if final and state != "failing":
            tries = f" after {streak} tries" if streak > 1 else ""
            events.append(
                Event(
                    "failed",
                    run.host,
                    f"{run.host}: backup failed{tries}",
                    f"Run {run.id}: {run.error}",
                    run.id,
                )
            )
            store.set_alert_state(run.host, "failing")
    elif state in ("failing", "stale"):
        events.append(
            Event(
                "recovered",
                run.host,
                f"{run.host}: backups work again",
                f"Run {run.id} {run.status} after the host was {state}.",
                run.id,
            )
        )
        store.set_alert_state(run.host, None)
    return events


def stale_event(store: Store, host: str, reason: str) -> Event | None:
    """A 'stale' event the first time a host turns stale."""
    if store.alert_state(host) in ("stale", "failing"):
        return None
    store.set_alert_state(host, "stale")
    return Event("stale", host, f"{host}: no recent backup", reason)
