"""The node's SQLite database: one connection, all-or-nothing transactions, grouped calls.

Layer: node domain, synchronous; used from the store's one worker thread (``worker.py``) and by
tests. WAL with synchronous commits, so a SIGKILL at any moment leaves either a whole
transaction or none of it; ``secure_delete`` zeroes freed pages. Tables that mirror part of
their state in memory (the audit chain's head, the count of held keys) register with
``keep_in_step``: a transaction that fails, its commit included, puts that state back too.
A failure of the database itself (disk full, I/O error) surfaces as ``StoreFailure``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import Histogram

from qkdnet.node.errors import StoreFailure

SELECT_IN_SLICE = 500  # key IDs per "in (...)" query, well within SQLite's variable limit
BUSY_TIMEOUT_MS = 5000
COMMIT_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class InStep(Protocol):
    """In-memory state derived from the database, saved and put back around a transaction."""

    def snapshot(self) -> object: ...

    def restore(self, saved: Any) -> None: ...


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("pragma journal_mode=wal")
        self.conn.execute("pragma synchronous=full")
        self.conn.execute("pragma secure_delete=on")
        # A truncating checkpoint (below) holds the write lock for a moment: wait, don't fail.
        self.conn.execute(f"pragma busy_timeout={BUSY_TIMEOUT_MS}")
        self._in_step: list[InStep] = []
        self._in_group = False
        # Set when key material was overwritten: its old page images are still in the write-ahead
        # log until a checkpoint truncates it (the store's checkpoint thread does, see worker.py).
        self.wants_truncate = False
        # How long each synchronous commit (its fsync) takes; the node's /metrics reports it.
        self.commit_seconds = Histogram("qkdnet_keystore_commit_duration_seconds",
                                        "Time to commit one key-store transaction, fsync included",
                                        buckets=COMMIT_BUCKETS_S, registry=None)

    def truncate_log(self) -> None:
        """Copy the log into the database and empty it: overwritten keys survive in no file."""
        self.conn.execute("pragma wal_checkpoint(TRUNCATE)")

    def create(self, schema: str) -> None:
        """Each table module creates its own tables (``create table if not exists``)."""
        self.conn.executescript(schema)

    def keep_in_step(self, holder: InStep) -> None:
        self._in_step.append(holder)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction, or a savepoint inside a ``group``; all or nothing, memory included."""
        saved = [holder.snapshot() for holder in self._in_step]
        try:
            if self._in_group:
                self.conn.execute("savepoint call")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("rollback to call")
                    raise
                finally:
                    self.conn.execute("release call")
            else:
                self.conn.execute("begin immediate")
                try:
                    yield self.conn
                    started = time.perf_counter()
                    self.conn.execute("commit")
                    self.commit_seconds.observe(time.perf_counter() - started)
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("rollback")
                    raise
        except BaseException as exc:
            for holder, state in zip(self._in_step, saved, strict=True):
                holder.restore(state)
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                raise StoreFailure(f"key store database failed: {exc}") from None
            raise

    def group(self, calls: list[tuple[Callable[..., Any], tuple]]) -> list[tuple[bool, Any]]:
        """Several calls in one transaction, so one synchronous commit covers them all.

        Each call runs in its own savepoint: one that fails is rolled back alone and its
        exception returned in its place. If the commit itself fails, it raises for all.
        """
        results: list[tuple[bool, Any]] = []
        with self.transaction():
            self._in_group = True
            try:
                for fn, args in calls:
                    try:
                        results.append((True, fn(*args)))
                    except Exception as exc:  # the caller gets it back
                        results.append((False, exc))
            finally:
                self._in_group = False
        return results

    def select_in(self, query: str, key_ids: list[str], args: tuple = ()) -> list[tuple]:
        """``query`` with its ``in ({})`` filled for key_ids (in slices, within SQLite's limits)."""
        rows: list[tuple] = []
        for start in range(0, len(key_ids), SELECT_IN_SLICE):
            part = key_ids[start:start + SELECT_IN_SLICE]
            rows += self.conn.execute(query.format(",".join("?" * len(part))), (*part, *args)).fetchall()
        return rows

    def close(self) -> None:
        self.conn.close()
