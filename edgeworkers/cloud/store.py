"""Durable object store: SQLite in WAL mode, written behind by one thread, read from memory.

One table of objects keyed (resource, namespace, name) and one cluster-wide resourceVersion counter,
both updated in the same transaction. The whole set is loaded at start and kept in memory, so reads
and lists never touch the disk; the process is the only writer. Objects handed out are shared:
callers copy before changing them.

Memory holds two views. The *head* changes at once with each write (so resourceVersions, conflicts and the writes
that follow see it in order: ``get``, ``find``, ``list``); its SQL goes to the writer thread, which commits whatever
has queued up in one transaction: the event loop never waits on the disk, and a burst of writes costs one commit per
batch. The *visible* view (``get_visible``, ``list_visible``, ``resource_version``: what GET, list and watch answer)
and the watchers (the ``on_commit`` listeners) get a write only once its transaction is committed. A request that
wrote awaits ``flushed()`` before it answers, so what a client is told is on disk.

A commit that fails (disk full, I/O error) undoes, newest first, every head change not yet committed (the failed
batch and the writes queued behind it, which were made on top of it), fails the requests waiting for them with a
500, broadcasts nothing, and leaves the store writing again: the next write after space is freed succeeds. The
counter is committed with each batch, so a restart resumes above every resourceVersion a client ever saw (the
numbers of an undone batch, which nobody saw, are not handed out again in this run).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog

from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.k8s import status
from edgeworkers.k8s.printers import parse_time
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


@dataclass(frozen=True)
class _Change:
    """One write to the head: the object before and after (None: absent), and its event."""
    resource: str
    key: tuple[str, str]
    before: dict | None
    after: dict | None
    event: Event


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
        self._rv: int = self._db.execute("SELECT rv FROM counter").fetchone()[0]  # the newest handed out
        self._visible_rv = self._rv  # the newest committed
        self._objects: dict[str, dict[tuple[str, str], dict]] = {r: {} for r in RESOURCES}
        for resource, namespace, name, body in self._db.execute("SELECT resource, namespace, name, body FROM objects"):
            self._objects.setdefault(resource, {})[(namespace, name)] = orjson.loads(body)
        self._visible = {resource: dict(items) for resource, items in self._objects.items()}
        self._listeners: list[Callable[[Event], None]] = []
        self._rollback_listeners: list[Callable[[], None]] = []
        self._depth = 0  # of nested ``atomic`` blocks
        self._staged: list[_Change] = []
        self._statements: list[Statement] = []
        self._inflight: deque[tuple[int, list[_Change]]] = deque()  # submitted, not yet settled, oldest first
        self._settled = 0  # every submission up to this one is committed or undone
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer = _Writer(self._db, self._batch_done)

    @property
    def resource_version(self) -> int:
        """The newest committed resourceVersion: what lists and bookmarks say."""
        return self._visible_rv

    def on_commit(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with each event once its write is committed, in resourceVersion order (the watch hub)."""
        self._listeners.append(listener)

    def on_rollback(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after a failed commit undid writes (a controller that wrote must look again)."""
        self._rollback_listeners.append(listener)

    def close(self) -> None:
        """Commit what is queued, stop the writer, close the database."""
        self._writer.close()
        self._settle()
        self._db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """The writes inside reach the database in one transaction: all of them or none (a namespace's deletion)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._submit()

    def _stage(self, change: _Change, statement: Statement) -> None:
        items = self._objects[change.resource]
        if change.after is None:
            del items[change.key]
        else:
            items[change.key] = change.after
        self._staged.append(change)
        self._statements.append(statement)
        if self._depth == 0:
            self._submit()

    def _submit(self) -> None:
        if not self._staged:
            return
        changes, statements, self._staged, self._statements = self._staged, self._statements, [], []
        with contextlib.suppress(RuntimeError):  # no loop: ``flush`` settles
            self._loop = asyncio.get_running_loop()
        self._inflight.append((self._writer.submit(statements, self._rv), changes))

    def flush(self) -> None:
        """Block until every write so far is committed; 500 (and nothing of them applied) if the commit failed."""
        target = self._writer.submitted
        if target <= self._settled:
            return
        self._writer.wait(target)
        self._settle()
        if self._writer.committed < target:
            raise _commit_failed()

    async def flushed(self) -> None:
        """Wait (without blocking the loop) until every write so far is committed; 500 if the commit failed (and
        nothing of the writes since the last commit is applied)."""
        target = self._writer.submitted
        if target <= self._settled:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._settle()  # what the writer finished before this loop's callback ran
        await future

    def _batch_done(self) -> None:
        """On the writer's thread: settle on the loop that wrote."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # that loop is closed: ``flush`` or ``close`` settles
                loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        """Make what the writer committed visible and tell the listeners; undo everything after a failed commit."""
        committed, failure = self._writer.outcome()
        events: list[Event] = []
        while self._inflight and self._inflight[0][0] <= committed:
            _seq, changes = self._inflight.popleft()
            for change in changes:
                items = self._visible[change.resource]
                if change.after is None:
                    items.pop(change.key, None)
                else:
                    items[change.key] = change.after
                events.append(change.event)
            self._visible_rv = changes[-1].event.rv
        self._settled = max(self._settled, committed)
        if failure is not None:
            self._undo(failure)
        for event in events:
            for listener in self._listeners:
                listener(event)
        waiting, self._waiters = self._waiters, []
        for target, future in waiting:
            if target <= committed:
                if not future.done():
                    future.set_result(None)
            elif target <= self._settled:  # undone
                if not future.done():
                    future.set_exception(_commit_failed(failure))
            else:
                self._waiters.append((target, future))
        if failure is not None:
            for listener in self._rollback_listeners:
                listener()

    def _undo(self, failure: BaseException) -> None:
        """Put the head back as committed: the failed batch and every write after it (made on top of it) go."""
        undone = [change for _seq, changes in self._inflight for change in changes]
        for change in reversed(undone):
            items = self._objects[change.resource]
            if change.before is None:
                items.pop(change.key, None)
            else:
                items[change.key] = change.before
        self._inflight.clear()
        self._settled = self._writer.recover()
        log.error("a commit failed: its writes and those queued behind it are undone", writes=len(undone),
                  error=_error_name(failure))

    def get(self, resource: str, namespace: str, name: str) -> dict:
        obj = self._objects[resource].get((namespace, name))
        if obj is None:
            raise status.not_found(resource, name, RESOURCES[resource].group)
        return obj

    def find(self, resource: str, namespace: str, name: str) -> dict | None:
        return self._objects[resource].get((namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        """Objects of ``resource`` (in ``namespace`` when given), ordered by namespace and name."""
        return _sorted(self._objects[resource], namespace)

    def get_visible(self, resource: str, namespace: str, name: str) -> dict:
        """As ``get``, of what is committed (what a GET answers)."""
        obj = self._visible[resource].get((namespace, name))
        if obj is None:
            raise status.not_found(resource, name, RESOURCES[resource].group)
        return obj

    def list_visible(self, resource: str, namespace: str | None = None) -> list[dict]:
        """As ``list``, of what is committed (what a list or a new watch answers, at ``resource_version``)."""
        return _sorted(self._visible[resource], namespace)

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
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())  # a defaulter may have set it (a Job's selector)
        meta["creationTimestamp"] = format_time(self._clock())
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        if "spec" in obj and resource not in ("nodes", "namespaces"):
            meta["generation"] = 1
        return self._write(ADDED, resource, obj, None)

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
        return self._write(MODIFIED, resource, obj, old)

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
        return self._write(MODIFIED, resource, obj, old)

    def mark_deleting(self, resource: str, namespace: str, name: str, finalizers: list[str]) -> Event | None:
        """Mark an object that ``finalizers`` keep for deletion, as kube-apiserver's ``markAsDeleting``: its
        ``deletionTimestamp`` now (unless an earlier one is set), ``deletionGracePeriodSeconds: 0``, the generation
        bumped the first time. None when nothing changes (a second delete of an object already being deleted)."""
        old = self.get(resource, namespace, name)
        obj = orjson.loads(orjson.dumps(old))
        meta, now = obj["metadata"], self._clock()
        if "deletionTimestamp" not in meta and meta.get("generation"):
            meta["generation"] += 1
        if "deletionTimestamp" not in meta or (parse_time(meta["deletionTimestamp"]) or now) > now:
            meta["deletionTimestamp"] = format_time(now)
        meta["deletionGracePeriodSeconds"] = 0
        meta["finalizers"] = finalizers
        if obj == old:
            return None
        return self._write(MODIFIED, resource, obj, old)

    def delete(self, resource: str, namespace: str, name: str) -> Event:
        old = self.get(resource, namespace, name)
        return self._write(DELETED, resource, {**old, "metadata": dict(old["metadata"])}, old)

    def _write(self, type_: str, resource: str, obj: dict, old: dict | None) -> Event:
        """Change the head (``obj`` is what a DELETED event carries) under the next resourceVersion."""
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        key = (meta.get("namespace", ""), meta["name"])
        event = Event(type_, resource, obj, self._rv, old if type_ == MODIFIED else None)
        if type_ == DELETED:
            change = _Change(resource, key, old, None, event)
            statement: Statement = ("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                                    (resource, *key))
        else:
            change = _Change(resource, key, old, obj, event)
            statement = ("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)", (resource, *key, orjson.dumps(obj)))
        self._stage(change, statement)
        return event

    def _generate_name(self, resource: str, namespace: str, prefix: str) -> str:
        while True:
            name = prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
            if (namespace, name) not in self._objects[resource]:
                return name


def _sorted(items: dict[tuple[str, str], dict], namespace: str | None) -> list[dict]:
    keys = sorted(k for k in items if namespace is None or k[0] == namespace)
    return [items[k] for k in keys]


def _error_name(failure: BaseException | None) -> str:
    """What failed, naming no data: SQLite's error code (``SQLITE_FULL``), else the exception's type."""
    return getattr(failure, "sqlite_errorname", None) or type(failure).__name__


def _commit_failed(failure: BaseException | None = None) -> status.APIError:
    """As kube-apiserver answers when etcd refuses a write: 500 InternalError; here nothing of it is applied."""
    return status.internal(f"the store could not commit the write ({_error_name(failure)}); it was not applied")


class _Writer:
    """One thread committing queued statements in order, a batch per transaction, with the resourceVersion counter.

    After a failed commit it commits nothing more until ``recover``: what was queued behind the failed batch was
    written on top of it, and the store undoes it all before anything new is queued.
    """

    def __init__(self, db: sqlite3.Connection, done: Callable[[], None]) -> None:
        self._db = db
        self._done = done  # called on this thread after each commit, good or failed
        self._cond = threading.Condition()
        self._queue: list[Statement] = []
        self._queued_rv = 0  # the counter once the queue is committed
        self.submitted = 0  # sequence number of the last submitted write
        self.committed = 0
        self._failure: BaseException | None = None
        self._closing = False
        self._wake_scheduled = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def submit(self, statements: list[Statement], rv: int) -> int:
        """Queue a write. Inside an event loop the writer is woken once per turn of the loop, not once per write:
        waking a thread hands it the GIL, and a burst of writes would otherwise pay that hand-over each time."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the store is closed")
            self._queue.extend(statements)
            self._queued_rv = rv
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

    def outcome(self) -> tuple[int, BaseException | None]:
        """The last committed sequence number, and the failure that stopped the writer after it (if any)."""
        with self._cond:
            return self.committed, self._failure

    def wait(self, seq: int) -> None:
        """Block until ``seq`` is committed or a commit failed."""
        with self._cond:
            self._cond.notify_all()  # a wake still scheduled on a loop must not keep this waiting
            self._cond.wait_for(lambda: self.committed >= seq or self._failure is not None)

    def recover(self) -> int:
        """Drop what is queued and commit again; returns the last sequence number dropped or failed."""
        with self._cond:
            self._queue, self._failure = [], None
            self._cond.notify_all()
            return self.submitted

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: (self._queue and self._failure is None) or self._closing)
                if self._closing and (not self._queue or self._failure is not None):
                    return
                batch, self._queue, seq, rv = self._queue, [], self.submitted, self._queued_rv
            try:
                self._commit(batch, rv)
            except Exception as exc:  # noqa: BLE001 - any failure of the disk or the database undoes the batch
                log.warning("the store could not commit", statements=len(batch), error=_error_name(exc))
                with self._cond:
                    self._failure = exc
                    self._cond.notify_all()
            else:
                with self._cond:
                    self.committed = seq
                    self._cond.notify_all()
            self._done()

    def _commit(self, batch: list[Statement], rv: int) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in batch:
                self._db.execute(sql, args)
            self._db.execute("UPDATE counter SET rv = ?", (rv,))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # a failed COMMIT leaves the transaction open: the next BEGIN would fail
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise
