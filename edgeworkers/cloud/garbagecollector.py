"""kube-controller-manager's garbage collector, for what waits: owners deleted in the foreground.

An owner a ``Foreground`` delete marked (``deletionTimestamp`` and the ``foregroundDeletion`` finalizer) is synced
when marked and again whenever one of its dependents changes or goes: each sync deletes its dependents and, once none
that blocks it is left, removes the finalizer, and so the owner (``ownership.delete_dependents``). The owners so
marked are found again at start and on each resync, so a restart resumes them. Background and orphan deletion need no
waiting: they run inside the write that deletes the owner (``ownership.py``).
"""
from __future__ import annotations

from collections.abc import Iterator

from edgeworkers.cloud import ownership
from edgeworkers.cloud.controller import Controller, Key, TokenBucket
from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.cloud.store import DELETED, Clock, Event, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings


def _key(resource: str, obj: dict) -> Key:
    """An owner's key: its resource, and its namespace and name (the namespace empty for a cluster-scoped one)."""
    meta = obj["metadata"]
    return resource, f"{meta.get('namespace', '')}/{meta['name']}"


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, store: Store, hub: Hub, clock: Clock, resync_s: float = 30.0) -> None:
        self._waiting: dict[str, Key] = {}  # the uid of each owner deleting its dependents: its key
        super().__init__(store, hub, clock, resync_s)

    def keys_for(self, event: Event) -> Iterator[Key]:
        obj = event.object
        uid = obj["metadata"]["uid"]
        if event.type != DELETED and ownership.deleting_dependents(obj):
            self._waiting[uid] = _key(event.resource, obj)
            yield self._waiting[uid]
        else:
            self._waiting.pop(uid, None)
        for version in (obj, event.old) if self._waiting else ():
            if version is not None:
                for owner in ownership.owner_uids(version) & self._waiting.keys():
                    yield self._waiting[owner]

    def enqueue_all(self) -> None:
        for resource in RESOURCES:
            for obj in self.store.list(resource):
                if ownership.deleting_dependents(obj):
                    self._waiting[obj["metadata"]["uid"]] = key = _key(resource, obj)
                    self.enqueue(key)

    def sync(self, key: Key) -> float | None:
        resource, path = key
        namespace, _, name = path.partition("/")
        owner = self.store.find(resource, namespace, name)
        if owner is None or not ownership.deleting_dependents(owner):
            return None
        for event in ownership.delete_dependents(self.store, resource, owner):
            self.hub.publish(event)
        return None


def make_controller(store: Store, hub: Hub, clock: Clock, _settings: Settings, _limiter: TokenBucket) -> GarbageCollector:
    return GarbageCollector(store, hub, clock)
