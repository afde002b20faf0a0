"""An in-memory index of one resource's objects, kept from the hub's events: what a controller reads instead of
listing a whole namespace on each sync."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeworkers.cloud.store import DELETED, Event, Store
from edgeworkers.cloud.watch import Hub


class Index:
    """The objects of one resource grouped by a key (their namespace, say), kept from the hub's events; rebuilt from
    the store after a failed commit undid writes."""

    def __init__(self, store: Store, hub: Hub, resource: str, key: Callable[[dict], Any]) -> None:
        self.store, self.resource, self.key = store, resource, key
        self.groups: dict[Any, dict[str, dict]] = {}
        self.rebuild()
        hub.add_listener(self._on_event)
        store.on_rollback(self.rebuild)

    def rebuild(self) -> None:
        self.groups = {}
        for obj in self.store.list(self.resource):
            self._put(obj)

    def _put(self, obj: dict) -> None:
        self.groups.setdefault(self.key(obj), {})[obj["metadata"]["name"]] = obj

    def _drop(self, obj: dict) -> None:
        group = self.groups.get(self.key(obj))
        if group is not None:
            group.pop(obj["metadata"]["name"], None)
            if not group:
                del self.groups[self.key(obj)]

    def _on_event(self, event: Event) -> None:
        if event.resource != self.resource:
            return
        if event.old is not None:
            self._drop(event.old)
        if event.type == DELETED:
            self._drop(event.object)
        else:
            self._put(event.object)

    def get(self, key: Any) -> list[dict]:
        return list(self.groups.get(key, {}).values())
