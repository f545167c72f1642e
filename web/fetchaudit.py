"""Which git-over-HTTP requests become a "git fetch" audit entry: every clone and
fetch, each once.

A clone is many requests. The smart protocol: the ref discovery (``GET
info/refs?service=git-upload-pack``), then one or more ``POST git-upload-pack``.
The dumb one: ``info/refs``, ``HEAD``, the pack list, and then every object
and pack as a file. A client need not start with the ref discovery: with a
commit id seen in the web UI it can post its wants straight away, or fetch the
object files by name. So every request that reads a repository counts, not
only the ref discovery:

* a ref discovery (``info/refs``) always makes an entry: it starts every
  clone and fetch of a well-behaved client, so two fetches a second apart
  stay two entries;
* any other read makes an entry unless the same client (who, from which
  address) already has one for the same host within ``window`` seconds: a
  clone's hundred object requests are one entry, a client that skips the ref
  discovery gets one as well, and a long stream of requests one a window.

The caller writes the entry and only then calls ``recorded``: an entry that
could not be written (a full disk) is tried again on the next request.
"""

from __future__ import annotations

import collections
import threading

# Who read (``alice`` or ``token:ci``), which host, from which address.
FetchKey = tuple[str, str, str]


class FetchAudit:
    """Remembers when each client's reads of each host were last audited."""

    def __init__(self, window: float = 60.0, capacity: int = 4096) -> None:
        self.window = window
        self._capacity = capacity
        self._last: collections.OrderedDict[FetchKey, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def due(self, key: FetchKey, now: float, *, discovery: bool) -> bool:
        """Whether this read needs an audit entry (``discovery``: it is ``info/refs``)."""
        if discovery:
            return True
        with self._lock:
            last = self._last.get(key)
            return last is None or not 0 <= now - last < self.window

    def recorded(self, key: FetchKey, now: float) -> None:
        """Note that an entry for ``key`` was written at ``now``."""
        with self._lock:
            self._last[key] = now
            self._last.move_to_end(key)
            # Forgetting the oldest client only costs it one more entry.
            while len(self._last) > self._capacity:
                self._last.popitem(last=False)
