"""Watches: an in-process hub fanning store events out to subscribers, and the HTTP event stream.

The hub keeps a ring buffer of recent events so that a watch can resume from a resourceVersion; one
older than the buffer is refused with 410 Gone (Expired), as the API server's watch cache does. A watch from
resourceVersion 0 (or none) starts with synthetic ADDED events of the current objects. Selectors are
applied to the object before and after a change, so an object leaving the selection is sent as
DELETED and one entering it as ADDED.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.cloud.store import ADDED, DELETED, MODIFIED, Event, Store
from edgeworkers.k8s import status

BOOKMARK = "BOOKMARK"


class Matcher:
    """Which objects a watch or list selects: namespace, label selector, field selector."""

    def __init__(self, namespace: str | None = None, labels=None, fields=None) -> None:
        self.namespace, self.labels, self.fields = namespace, labels, fields

    def __call__(self, obj: dict) -> bool:
        meta = obj["metadata"]
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(meta.get("labels") or {}):
            return False
        return self.fields is None or self.fields.matches(obj)


@dataclass(frozen=True)
class WatchEvent:
    type: str
    object: dict


@dataclass(eq=False)
class Watcher:
    resource: str
    matches: Matcher
    queue: asyncio.Queue[WatchEvent] = field(default_factory=asyncio.Queue)

    def offer(self, event: Event) -> None:
        translated = self.translate(event)
        if translated is not None:
            self.queue.put_nowait(translated)

    def translate(self, event: Event) -> WatchEvent | None:
        now = self.matches(event.object)
        if event.type == MODIFIED and event.old is not None:
            before = self.matches(event.old)
            if before and not now:
                return WatchEvent(DELETED, event.object)
            if now and not before:
                return WatchEvent(ADDED, event.object)
        return WatchEvent(event.type, event.object) if now else None


class Hub:
    def __init__(self, store: Store, capacity: int = 10_000) -> None:
        self._store = store
        self._buffer: deque[Event] = deque(maxlen=capacity)
        # Events after this resourceVersion are all in the buffer.
        self._floor = store.resource_version
        self._watchers: dict[str, set[Watcher]] = {r: set() for r in RESOURCES}
        self._listeners: list[Callable[[Event], None]] = []

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every published event (the scheduler reacts to pods and nodes)."""
        self._listeners.append(listener)

    def publish(self, event: Event | None) -> None:
        if event is None:
            return
        if len(self._buffer) == self._buffer.maxlen:
            self._floor = self._buffer[0].rv
        self._buffer.append(event)
        for watcher in self._watchers[event.resource]:
            watcher.offer(event)
        for listener in self._listeners:
            listener(event)

    def subscribe(self, resource: str, matches: Matcher, since: int | None) -> Watcher:
        """A watcher primed with the events after ``since`` (or, for 0/None, the current objects)."""
        watcher = Watcher(resource, matches)
        if not since:
            for obj in self._store.list(resource, matches.namespace):
                if matches(obj):
                    watcher.queue.put_nowait(WatchEvent(ADDED, obj))
        else:
            if since < self._floor:
                raise status.gone(f"too old resource version: {since} ({self._floor + 1})")
            for event in self._buffer:
                if event.rv > since and event.resource == resource:
                    watcher.offer(event)
        self._watchers[resource].add(watcher)
        return watcher

    @property
    def resource_version(self) -> int:
        return self._store.resource_version

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers[watcher.resource].discard(watcher)

    def watcher_count(self, resource: str) -> int:
        return len(self._watchers[resource])


Encoder = Callable[[str, dict], bytes]


async def stream(request: web.Request, hub: Hub, watcher: Watcher, encode: Encoder, *,
                 timeout: float, bookmark_interval: float | None) -> web.StreamResponse:
    """Send the watcher's events as newline-delimited JSON until ``timeout`` or the client leaves.

    With ``bookmark_interval``, a quiet stream gets a BOOKMARK carrying the newest resourceVersion.
    """
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    kind = RESOURCES[watcher.resource]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await response.prepare(request)
        while (remaining := deadline - loop.time()) > 0:
            wait = min(remaining, bookmark_interval) if bookmark_interval else remaining
            try:
                event = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if bookmark_interval and loop.time() < deadline:
                    # The queue is empty and events are queued as they are published: all is sent up to here.
                    await response.write(encode(BOOKMARK, {
                        "kind": kind.kind, "apiVersion": kind.api_version,
                        "metadata": {"resourceVersion": str(hub.resource_version)}}))
                continue
            chunks = [encode(event.type, event.object)]
            while not watcher.queue.empty():  # send what is already queued in one write
                event = watcher.queue.get_nowait()
                chunks.append(encode(event.type, event.object))
            await response.write(b"".join(chunks))
        await response.write_eof()
    except ConnectionResetError:  # the client went away
        pass
    finally:
        hub.unsubscribe(watcher)
    return response
