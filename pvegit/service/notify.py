"""Notifications: webhooks (generic JSON, Slack-compatible, Gotify, ntfy) and e-mail.

Events: ``failed`` (after retries), ``stale``, ``recovered``, ``changed`` (with
the changed files and a short diff, secret files named only, secret lines masked) and
``restore``; which run makes which event is decided in ``events.py``.
Delivery happens on a background thread with retries; a target that fails is
logged (and kept in ``Notifier.failures``) and never holds up a backup. The
launcher (pvegit/service/launcher.py) hands every finished run's events here,
whatever started the run. A webhook URL may carry credentials
(user-info, sent as basic authentication, or a token in the query): errors and
log lines show it redacted (pvegit.content.redact), and so does ``target_location``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pvegit.config.file import Config, Target
from pvegit.content.redact import redact_text, redact_url
from pvegit.errors import PvegitError
from pvegit.state.store import Store
from pvegit.textsafe import printable

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Something an admin wants to hear about."""

    kind: str  # failed, stale, recovered, changed, restore, test
    host: str
    title: str
    message: str
    run_id: int | None = None
    commit_id: str | None = None
    at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # Names, errors and diff lines from a node go to mail, chat and phones: no control
        # characters (a title is one line, so it cannot add a mail header either).
        object.__setattr__(self, "title", printable(self.title))
        object.__setattr__(self, "message", printable(self.message, lines=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "host": self.host,
            "title": self.title,
            "message": self.message,
            "text": f"{self.title}\n{self.message}",
            "run": self.run_id,
            "commit": self.commit_id,
            "time": self.at,
            "priority": 8 if self.kind in ("failed", "stale") else 4,
        }


def send(target: Target, event: Event) -> None:
    """Deliver one event to one target now; raise PvegitError saying why it failed.

    The senders (smtplib, urllib, ssl) load on the first delivery, not with this
    module: a CLI snapshot imports the notifier and rarely sends anything.
    """
    from pvegit.service.delivery import deliver

    deliver(target, event)


def target_location(target: Target) -> str:
    """Where a target delivers, safe to show: the redacted URL, or recipients via server."""
    if target.kind == "webhook":
        return redact_url(target.url)
    return f"{', '.join(target.recipients)} via {target.host}"


@dataclass(frozen=True)
class DeliveryFailure:
    """An event a target never got: its last attempt failed (the error is redacted)."""

    target: str
    event: Event
    error: str


class Notifier:
    """Queues events and delivers them to the targets that want them.

    Delivery runs on one background thread; a failed attempt is retried after
    each of ``retry_delays``, then dropped and kept in ``failures``. ``drain``
    waits for every queued event (a CLI run waits for it before exiting).
    """

    def __init__(
        self,
        targets: Sequence[Target] | Callable[[], Sequence[Target]],
        *,
        retry_delays: Sequence[float] = (5, 30, 120),
        deliver: Callable[[Target, Event], None] = send,
    ) -> None:
        # A callable is asked on every event: targets made in the web UI count at once.
        self._targets = targets if callable(targets) else (lambda: tuple(targets))
        self._retry_delays = tuple(retry_delays)
        self._deliver = deliver
        self._queue: queue.Queue[tuple[Target, Event, int] | None] = queue.Queue()
        self._settled = threading.Condition()
        self._pending = 0  # deliveries queued, being tried or waiting for a retry
        self._failures: list[DeliveryFailure] = []
        self._thread = threading.Thread(target=self._work, name="pvegit-notify", daemon=True)
        self._thread.start()

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(self._targets())

    @property
    def failures(self) -> tuple[DeliveryFailure, ...]:
        """The deliveries dropped after their last attempt, oldest first."""
        with self._settled:
            return tuple(self._failures)

    @property
    def pending(self) -> int:
        """Deliveries not yet made nor dropped."""
        with self._settled:
            return self._pending

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every target that wants its kind (a test event: all); at once."""
        for target in self.targets:
            if event.kind in target.events or event.kind == "test":
                with self._settled:
                    self._pending += 1
                self._queue.put((target, event, 0))

    def drain(self, timeout: float) -> bool:
        """Wait until every queued delivery was made or dropped; False after ``timeout`` s."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending == 0, timeout)

    def _settle(self, failure: DeliveryFailure | None = None) -> None:
        with self._settled:
            self._pending -= 1
            if failure is not None:
                self._failures.append(failure)
            self._settled.notify_all()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            target, event, attempt = item
            try:
                self._deliver(target, event)
                _log.info(
                    "notification sent target=%s event=%s host=%s",
                    target.name,
                    event.kind,
                    event.host,
                )
                self._settle()
            except Exception as err:
                error = redact_text(str(err), target.url)
                if attempt < len(self._retry_delays):
                    delay = self._retry_delays[attempt]
                    _log.warning(
                        "notification failed target=%s event=%s attempt=%d retry_in=%ss error=%s",
                        target.name,
                        event.kind,
                        attempt + 1,
                        delay,
                        error,
                    )
                    timer = threading.Timer(delay, self._queue.put, ((target, event, attempt + 1),))
                    timer.daemon = True
                    timer.start()
                else:
                    _log.error(
                        "notification dropped target=%s event=%s after %d attempts: %s",
                        target.name,
                        event.kind,
                        attempt + 1,
                        error,
                    )
                    self._settle(DeliveryFailure(target.name, event, error))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


def test_event() -> Event:
    return Event(
        "test",
        "-",
        "pvegit test notification",
        "If you can read this, pvegit can reach this target.",
    )


def all_targets(config: Config, store: Store) -> tuple[Target, ...]:
    """The targets of the configuration file and those made in the web UI."""
    from pvegit.config.file import check_target

    made = []
    for target in store.notify_targets():
        try:
            made.append(check_target(dict(target.settings), f"web target {target.name!r}"))
        except PvegitError as err:
            _log.error("notification target skipped: %s", err)
    return (*config.targets, *made)


def send_test(targets: Sequence[Target]) -> list[tuple[Target, str | None]]:
    """Send a test event to every target now; (target, error or None) for each."""
    results: list[tuple[Target, str | None]] = []
    for target in targets:
        try:
            send(target, test_event())
            results.append((target, None))
        except PvegitError as err:
            results.append((target, str(err)))
    return results
