"""The embedded store's write-ahead log: its page cache size and the thread that copies the log
back into the database file off the request path."""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["AUTOCHECKPOINT_PAGES", "CACHE_KIB", "MMAP_BYTES", "Checkpointer"]

log = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 10_000  # about 40 MB of log at 4 KB pages
# The store's connection reads the database file through a memory map, so its page cache holds
# little more than the pages the log has newer copies of. A large cache costs every commit: a
# B-tree rebalance parks a page under a page number past the end of the file for a moment, and
# the commit then looks through the cache's whole hash table for pages past the end. With a
# 64 MB cache that walk was two fifths of a commit of a batch of leases (bench/RESULTS.md).
CACHE_KIB = 8 * 1024  # page cache of the store's connection (SQLite's default is 2 MB)
MMAP_BYTES = 0x7FFF0000  # the most SQLite maps by default (SQLITE_MAX_MMAP_SIZE)


class Checkpointer:
    """Copies the write-ahead log back into the database file from its own connection and
    thread, every ``interval_s``, so no request pays for it: left to itself SQLite checkpoints
    inside the commit that crosses ``wal_autocheckpoint`` pages, which nearly doubled the mean
    cost of a lease under churn. SQLite releases the GIL while it copies. Passive passes never
    wait for writers, so under constant writes they never let the log start over; the store's
    connection keeps checkpointing in its commits past ``AUTOCHECKPOINT_PAGES``, where it finds
    most of the log already copied and the log restarts."""

    def __init__(self, path: str, interval_s: float = 0.2) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(path, interval_s), daemon=True,
                                        name="sqlite-checkpoint")
        self._thread.start()

    def _run(self, path: str, interval_s: float) -> None:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or failing disk: the next pass retries
                    log.warning("WAL checkpoint of %s failed: %s", path, exc)
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
