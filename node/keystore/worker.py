"""The store's own thread: every database call runs there, in order, and concurrent calls share
one commit.

Layer: node domain (asyncio and threads, no grpc). Calls that arrive while the thread is busy
run together in one transaction (group commit): many concurrent relays then share one fsync
instead of paying one each. The thread is woken through a queue rather than an executor, and a
batch's results go back to the event loop in one callback: both are per-call costs on the relay
path. Checkpoints (copying the write-ahead log into the database, with an fsync) run on a
thread and connection of their own, never inside whichever commit crosses SQLite's threshold:
that commit, and every call queued behind it, would otherwise wait tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from qkdnet.node.errors import StoreFailure
from qkdnet.node.keystore.database import Database

CHECKPOINT_EVERY_S = 1.0
CHECKPOINT_BUSY_TIMEOUT_MS = 100
AFTER_COMMIT_EVERY_S = 1.0
T = TypeVar("T")


class StoreWorker:
    def __init__(self, db: Database, checkpoint_every_s: float = CHECKPOINT_EVERY_S,
                 after_commit: Callable[[], None] | None = None) -> None:
        """``after_commit`` runs on the store's thread after a batch, at most once a second and at
        close (the audit log's anchor)."""
        self._db = db
        self._after_commit = after_commit
        self._after_commit_at = 0.0
        db.conn.execute("pragma wal_autocheckpoint=0")
        self._checkpoint_every_s = checkpoint_every_s
        self._checkpoints_stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_forever, name="keystore-checkpoint",
                                              daemon=True)
        self._checkpointer.start()
        self._pending: list[tuple[Callable[..., Any], tuple, asyncio.Future]] = []
        self._lock = threading.Lock()
        self._wake: queue.SimpleQueue[asyncio.AbstractEventLoop | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="keystore", daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread, as one transaction or inside a group's."""
        if self._closed:
            raise StoreFailure("the key store is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self._pending.append((fn, args, future))
            first = len(self._pending) == 1
        if first:
            self._wake.put(loop)
        return await future

    def _serve(self) -> None:
        while (loop := self._wake.get()) is not None:
            self._drain(loop)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        results: list[tuple[bool, Any]]
        try:
            if len(batch) == 1:
                fn, args, _ = batch[0]
                try:
                    results = [(True, fn(*args))]
                except Exception as exc:
                    results = [(False, _as_store_error(exc))]
            else:
                results = [(ok, value if ok else _as_store_error(value))
                           for ok, value in self._db.group([(fn, args) for fn, args, _ in batch])]
        except Exception as exc:  # the shared commit failed: nothing of the batch was kept
            results = [(False, _as_store_error(exc))] * len(batch)
        try:
            loop.call_soon_threadsafe(_settle_all, [future for _, _, future in batch], results)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass
        if self._after_commit is not None and time.monotonic() - self._after_commit_at >= AFTER_COMMIT_EVERY_S:
            self._after_commit_at = time.monotonic()
            try:
                self._after_commit()
            except OSError:  # the next batch tries again
                self._after_commit_at = 0.0

    def _checkpoint_forever(self) -> None:
        """PASSIVE checkpoints never block the writer. After key material was overwritten, a
        TRUNCATE checkpoint also empties the log, which still holds the material's old pages: it
        holds the write lock for the moment it takes (the writer waits, ``busy_timeout``)."""
        db = sqlite3.connect(str(self._db.path), isolation_level=None, check_same_thread=False)
        db.execute(f"pragma busy_timeout={CHECKPOINT_BUSY_TIMEOUT_MS}")
        try:
            while not self._checkpoints_stop.wait(self._checkpoint_every_s):
                try:
                    db.execute("pragma wal_checkpoint(PASSIVE)")
                    if self._db.wants_truncate:
                        self._db.wants_truncate = False
                        busy, _, _ = db.execute("pragma wal_checkpoint(TRUNCATE)").fetchone()
                        if busy:  # a reader or the writer was in the way: next round
                            self._db.wants_truncate = True
                except sqlite3.Error:  # busy or I/O trouble: the next round tries again
                    self._db.wants_truncate = True
        finally:
            db.close()

    async def close(self) -> None:
        """Refuse new calls, finish the ones queued, then anchor and close the database (never
        inside a group of calls: a close in a transaction would fail them all)."""
        if self._closed:
            return
        self._closed = True
        self._checkpoints_stop.set()
        await asyncio.to_thread(self._checkpointer.join)
        self._wake.put(None)  # after the calls already queued: the thread drains them, then stops
        await asyncio.to_thread(self._thread.join)
        if self._after_commit is not None:
            self._after_commit()
        self._db.close()  # the last connection to close checkpoints what is left


def _as_store_error(exc: Exception) -> Exception:
    """A database failure outside a transaction (a read) is a ``StoreFailure`` too."""
    if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
        return StoreFailure(f"key store database failed: {exc}")
    return exc


def _settle_all(futures: list[asyncio.Future], results: list[tuple[bool, Any]]) -> None:
    for future, (ok, value) in zip(futures, results, strict=True):
        if future.done():  # the caller was cancelled; the call itself has happened (or not) all the same
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
