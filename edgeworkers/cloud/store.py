"""Durable object store: SQLite in WAL mode, written through, read from memory.

One table of objects keyed (resource, namespace, name) and one cluster-wide resourceVersion counter,
both updated in the same transaction. The whole set is loaded at start and kept in memory, so reads
and lists never touch the disk; the process is the only writer. Objects handed out are shared:
callers copy before changing them.
"""
from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.k8s import status

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
# generateName suffixes use the API server's alphabet (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Clock = Callable[[], dt.datetime]


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


def timestamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out."""
        return self._rv

    def close(self) -> None:
        self._db.close()

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
        meta["creationTimestamp"] = timestamp(self._clock())
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
        obj["metadata"]["deletionTimestamp"] = timestamp(self._clock() + dt.timedelta(seconds=grace_seconds))
        obj["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
        rv = self._write(resource, namespace, name, obj)
        return Event(MODIFIED, resource, obj, rv, old)

    def delete(self, resource: str, namespace: str, name: str) -> Event:
        old = self.get(resource, namespace, name)
        obj = {**old, "metadata": dict(old["metadata"])}
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        with self._transaction():
            self._db.execute("UPDATE counter SET rv = ?", (rv,))
            self._db.execute("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                             (resource, namespace, name))
        del self._objects[resource][(namespace, name)]
        return Event(DELETED, resource, obj, rv)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _write(self, resource: str, namespace: str, name: str, obj: dict) -> int:
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        with self._transaction():
            self._db.execute("UPDATE counter SET rv = ?", (rv,))
            self._db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                             (resource, namespace, name, orjson.dumps(obj)))
        self._objects[resource][(namespace, name)] = obj
        return rv

    def _generate_name(self, resource: str, namespace: str, prefix: str) -> str:
        while True:
            name = prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
            if (namespace, name) not in self._objects[resource]:
                return name
