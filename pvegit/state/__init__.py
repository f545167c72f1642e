"""state.db: what git cannot hold (hosts, runs, users, tokens, the audit), and the commit index.

``store`` is the database; ``opening`` refuses an empty state over existing
history; ``index`` is the SQLite index of each repository's commits (timelines,
file history); ``runlog`` is what state.db knows of each history; ``liveness``
is the one answer to "is this run still being run?"; ``restorelog`` is a
restore's audit entry, written before the first write to a node.
"""
