"""Durable object store: SQLite in WAL mode, written behind by one thread, read from memory.

One table of objects keyed (resource, namespace, name) and one cluster-wide resourceVersion counter,
both updated in the same transaction. The whole set is loaded at start and kept in memory, so reads
and lists never touch the disk; the process is the only writer. Objects handed out are shared:
callers copy before changing them.

Writes change memory at once (so resourceVersions and watch events keep their order) and queue their SQL for the
writer thread, which commits whatever has queued up in one transaction: the event loop never waits on the disk, and
a burst of writes costs one commit per batch. A request that wrote awaits ``flushed()`` before it answers, so what
a client was told is stored is on disk.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog

from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.k8s import status
from edgeworkers.k8s.timefmt import format_time

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
# generateName suffixes use the API server's alphabet (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Clock = Callable[[], dt.datetime]
Statement = tuple[str, tuple]
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Event:
    """One change: what a watcher is sent. ``old`` is the object before a MODIFIED (for selectors)."""
    type: str
    resource: str
    object: dict
    rv: int
    old: dict | None = None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    def __init__(self, path: Path, clock: Clock = utcnow) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, "
            "name TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (resource, namespace, name))")
        self._db.execute("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 0), rv INTEGER)")
        self._db.execute("INSERT OR IGNORE INTO counter VALUES (0, 1000)")
        self._clock = clock
        self._rv: int = self._db.execute("SELECT rv FROM counter").fetchone()[0]
        self._objects: dict[str, dict[tuple[str, str], dict]] = {r: {} for r in RESOURCES}
        for resource, namespace, name, body in self._db.execute("SELECT resource, namespace, name, body FROM objects"):
            self._objects.setdefault(resource, {})[(namespace, name)] = orjson.loads(body)
        self._writer = _Writer(self._db)
        self._batch: list[Statement] | None = None

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out."""
        return self._rv

    def close(self) -> None:
        """Commit what is queued, stop the writer, close the database."""
        self._writer.close()
        self._db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """The writes inside reach the database in one transaction: all of them or none (a namespace's deletion)."""
        outer = self._batch is None
        if outer:
            self._batch = []
        try:
            yield
        finally:
            if outer:
                statements, self._batch = self._batch or [], None
                if statements:
                    self._writer.submit(statements)

    def _submit(self, statements: list[Statement]) -> None:
        if self._batch is not None:
            self._batch.extend(statements)
        else:
            self._writer.submit(statements)

    def flush(self) -> None:
        """Block until every write so far is committed."""
        self._writer.wait(self._writer.submitted)

    async def flushed(self) -> None:
        """Wait (without blocking the loop) until every write so far is committed; 500 if the disk failed."""
        await self._writer.wait_async(self._writer.submitted)

    def get(self, resource: str, namespace: str, name: str) -> dict:
        obj = self._objects[resource].get((namespace, name))
        if obj is None:
            raise status.not_found(resource, name, RESOURCES[resource].group)
        return obj

    def find(self, resource: str, namespace: str, name: str) -> dict | None:
        return self._objects[resource].get((namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        """Objects of ``resource`` (in ``namespace`` when given), ordered by namespace and name."""
        items = self._objects[resource]
        keys = sorted(k for k in items if namespace is None or k[0] == namespace)
        return [items[k] for k in keys]

    def create(self, resource: str, obj: dict) -> Event:
        """Store a new object, filling name (from generateName), uid, creationTimestamp, generation."""
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(resource, namespace, meta["generateName"])
        name = meta["name"]
        if (namespace, name) in self._objects[resource]:
            raise status.already_exists(resource, name, RESOURCES[resource].group)
        kind = RESOURCES[resource]
        obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = format_time(self._clock())
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        if "spec" in obj and resource not in ("nodes", "namespaces"):
            meta["generation"] = 1
        rv = self._write(resource, namespace, name, obj)
        return Event(ADDED, resource, obj, rv)

    def update(self, resource: str, obj: dict) -> Event | None:
        """Replace an object; None when nothing changed (no new resourceVersion, no event).

        A ``metadata.resourceVersion`` in ``obj`` is a precondition: a stale one is a 409 Conflict.
        Identity (uid, creationTimestamp) and a set deletionTimestamp are kept from the stored object.
        """
        meta = obj.setdefault("metadata", {})
        namespace, name = meta.get("namespace", ""), meta["name"]
        old = self.get(resource, namespace, name)
        old_meta = old["metadata"]
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            raise status.conflict(resource, name, group=RESOURCES[resource].group)
        kind = RESOURCES[resource]
        obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if "generation" in old_meta:
            meta["generation"] = old_meta["generation"] + (obj.get("spec") != old.get("spec"))
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if obj == old:
            return None
        rv = self._write(resource, namespace, name, obj)
        return Event(MODIFIED, resource, obj, rv, old)

    def begin_deletion(self, resource: str, namespace: str, name: str, grace_seconds: int) -> Event | None:
        """Mark an object for graceful deletion: ``deletionTimestamp`` = now + grace.

        A second request may only shorten the grace period; otherwise nothing changes (None).
        """
        old = self.get(resource, namespace, name)
        old_meta = old["metadata"]
        if "deletionTimestamp" in old_meta and old_meta.get("deletionGracePeriodSeconds", 0) <= grace_seconds:
            return None
        obj = orjson.loads(orjson.dumps(old))
        obj["metadata"]["deletionTimestamp"] = format_time(self._clock() + dt.timedelta(seconds=grace_seconds))
        obj["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
        rv = self._write(resource, namespace, name, obj)
        return Event(MODIFIED, resource, obj, rv, old)

    def delete(self, resource: str, namespace: str, name: str) -> Event:
        old = self.get(resource, namespace, name)
        obj = {**old, "metadata": dict(old["metadata"])}
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self._submit([("UPDATE counter SET rv = ?", (rv,)),
                      ("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                       (resource, namespace, name))])
        del self._objects[resource][(namespace, name)]
        return Event(DELETED, resource, obj, rv)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _write(self, resource: str, namespace: str, name: str, obj: dict) -> int:
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self._submit([("UPDATE counter SET rv = ?", (rv,)),
                      ("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                       (resource, namespace, name, orjson.dumps(obj)))])
        self._objects[resource][(namespace, name)] = obj
        return rv

    def _generate_name(self, resource: str, namespace: str, prefix: str) -> str:
        while True:
            name = prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
            if (namespace, name) not in self._objects[resource]:
                return name


class _Writer:
    """One thread committing queued statements in order, a batch per transaction; waiters learn when theirs is in."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._cond = threading.Condition()
        self._queue: list[Statement] = []
        self.submitted = 0  # sequence number of the last submitted write
        self._committed = 0
        self._failure: BaseException | None = None
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._wake_scheduled = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def submit(self, statements: list[Statement]) -> int:
        """Queue a write. Inside an event loop the writer is woken once per turn of the loop, not once per write:
        waking a thread hands it the GIL, and a burst of writes would otherwise pay that hand-over each time."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the store is closed")
            self._queue.extend(statements)
            self.submitted += 1
            seq = self.submitted
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._wake()
            return seq
        if not self._wake_scheduled:
            self._wake_scheduled = True
            loop.call_soon(self._wake)
        return seq

    def _wake(self) -> None:
        with self._cond:
            self._wake_scheduled = False
            self._cond.notify_all()

    def wait(self, seq: int) -> None:
        with self._cond:
            self._cond.notify_all()  # a wake still scheduled on a loop must not keep this waiting
            self._cond.wait_for(lambda: self._committed >= seq or self._failure is not None)
            self._raise_failure()

    async def wait_async(self, seq: int) -> None:
        loop = asyncio.get_running_loop()
        with self._cond:
            self._raise_failure()
            if self._committed >= seq:
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((seq, loop, future))
        await future

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise status.internal("the store could not write to its database")

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._queue and self._closing:
                    return
                batch, self._queue, seq = self._queue, [], self.submitted
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, args in batch:
                        self._db.execute(sql, args)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except Exception as exc:  # the disk failed: memory is ahead of it; every write from now on fails loudly
                log.exception("the store could not commit", statements=len(batch))
                failure: BaseException | None = exc
            else:
                failure = None
            with self._cond:
                if failure is not None:
                    self._failure = failure
                else:
                    self._committed = seq
                ready = [w for w in self._waiters if w[0] <= self._committed or self._failure is not None]
                self._waiters = [w for w in self._waiters if w not in ready]
                self._cond.notify_all()
            for _seq, loop, future in ready:
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(_settle, future, failure)


def _settle(future: asyncio.Future[None], failure: BaseException | None) -> None:
    if future.done():
        return
    if failure is None:
        future.set_result(None)
    else:
        future.set_exception(status.internal("the store could not write to its database"))
