"""Watches: an in-process hub fanning store events out to subscribers, and the HTTP event stream.

The hub gets each event from the store once its write is committed (``Store.on_commit``), so no watcher sees a write
that a failed commit undid. It keeps a ring buffer of recent events so that a watch can resume from a resourceVersion; one
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

import structlog
from aiohttp import web

from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.cloud.store import ADDED, DELETED, MODIFIED, Event, Store
from edgeworkers.k8s import status

BOOKMARK = "BOOKMARK"
log = structlog.get_logger(__name__)


NODE_NAME = "spec.nodeName"


def _node_of(pod: dict) -> str:
    """A pod's ``spec.nodeName`` as a field selector reads it ("" when unbound)."""
    return (pod.get("spec") or {}).get("nodeName") or ""


def _selected_node(watcher: Watcher) -> str | None:
    """The one node whose pods a pod watcher selects (``spec.nodeName=<node>``), if it selects one."""
    fields = watcher.matches.fields
    return fields.value_of(NODE_NAME) if watcher.resource == "pods" and fields is not None else None


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


# Events a watcher may have waiting beyond those it was primed with. A watcher that falls this far behind (a stalled
# or slow client) is closed, as kube's cacher closes an unresponsive watcher; its client lists or watches again.
MAX_PENDING_EVENTS = 10_000
# Put in a closed watcher's queue to end its stream.
_CLOSED = WatchEvent("CLOSED", {})


@dataclass(eq=False)
class Watcher:
    resource: str
    matches: Matcher
    queue: asyncio.Queue[WatchEvent] = field(default_factory=asyncio.Queue)
    limit: int = MAX_PENDING_EVENTS
    primed: int = 0  # events queued by subscribe, which the limit does not count
    closed: bool = False
    on_close: Callable[[], None] | None = None  # the stream's: cut the connection (a stalled client reads nothing)

    def offer(self, event: Event) -> bool:
        """Queue the event (when selected); False when the watcher is over its limit and now closed."""
        translated = self.translate(event)
        if translated is None or self.closed:
            return not self.closed
        if self.queue.qsize() >= self.limit + self.primed:
            self.close()
            return False
        self.queue.put_nowait(translated)
        return True

    def close(self) -> None:
        """Drop what is queued and end the stream at its next read."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSED)
        if self.on_close is not None:
            self.on_close()

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
    def __init__(self, store: Store, capacity: int = 10_000, watcher_limit: int = MAX_PENDING_EVENTS) -> None:
        self._store = store
        self.watcher_limit = watcher_limit
        self._buffer: deque[Event] = deque(maxlen=capacity)
        # Events after this resourceVersion are all in the buffer.
        self._floor = store.resource_version
        self._watchers: dict[str, set[Watcher]] = {r: set() for r in RESOURCES}
        # The pod watchers that select one node (each node's bridge) by it, the others apart: a pod's event is offered
        # to its node's watchers alone, not to every node's (kube's watch cache indexes pods by spec.nodeName too).
        self._by_node: dict[str, set[Watcher]] = {}
        self._any_node: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []
        store.on_commit(self._deliver)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every published event (the binder reacts to pods and nodes)."""
        self._listeners.append(listener)

    def publish(self, event: Event | None) -> None:
        """Tell the in-process controllers of a write at once (the writes they make in turn join its commit);
        watchers get it from the store, once it is committed."""
        if event is None:
            return
        for listener in self._listeners:
            listener(event)

    def _deliver(self, event: Event) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self._floor = self._buffer[0].rv
        self._buffer.append(event)
        watchers = self._watchers[event.resource] if event.resource != "pods" else self._pod_watchers(event)
        overflowed = [w for w in watchers if not w.offer(event)]
        for watcher in overflowed:
            log.warning("closing a watcher that fell behind", resource=event.resource, limit=watcher.limit)
            self.unsubscribe(watcher)

    def _pod_watchers(self, event: Event) -> set[Watcher]:
        """The watchers a pod's event may concern: those of its node (before and after the change) and those that
        select no one node."""
        found = set(self._any_node)
        for pod in (event.object, event.old):
            if pod is not None:
                found |= self._by_node.get(_node_of(pod), set())
        return found

    def subscribe(self, resource: str, matches: Matcher, since: int | None) -> Watcher:
        """A watcher primed with the events after ``since`` (or, for 0/None, the current objects)."""
        watcher = Watcher(resource, matches, limit=self.watcher_limit)
        if not since:
            for obj in self._store.list_visible(resource, matches.namespace):
                if matches(obj):
                    watcher.queue.put_nowait(WatchEvent(ADDED, obj))
        else:
            if since < self._floor:
                raise status.gone(f"too old resource version: {since} ({self._floor + 1})")
            for event in self._buffer:
                if event.rv > since and event.resource == resource and \
                        (translated := watcher.translate(event)) is not None:
                    watcher.queue.put_nowait(translated)
        watcher.primed = watcher.queue.qsize()
        self._watchers[resource].add(watcher)
        if resource == "pods":
            node = _selected_node(watcher)
            if node is None:
                self._any_node.add(watcher)
            else:
                self._by_node.setdefault(node, set()).add(watcher)
        return watcher

    @property
    def resource_version(self) -> int:
        return self._store.resource_version

    def close_all(self) -> None:
        """End every watch (the server is shutting down): each stream ends at its next read."""
        for watchers in self._watchers.values():
            for watcher in list(watchers):
                watcher.on_close = None  # end the stream cleanly rather than cut it
                watcher.close()
            watchers.clear()

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers[watcher.resource].discard(watcher)
        self._any_node.discard(watcher)
        node = _selected_node(watcher)
        if node in self._by_node:
            self._by_node[node].discard(watcher)
            if not self._by_node[node]:
                del self._by_node[node]

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

    def cut() -> None:
        if request.transport is not None:
            request.transport.close()

    watcher.on_close = cut
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
            if event is _CLOSED:
                break
            chunks = [encode(event.type, event.object)]
            while not watcher.queue.empty():  # send what is already queued in one write
                event = watcher.queue.get_nowait()
                if event is _CLOSED:
                    break
                chunks.append(encode(event.type, event.object))
            if chunks:
                await response.write(b"".join(chunks))
            if event is _CLOSED or watcher.closed:
                break
        await response.write_eof()
    except ConnectionResetError:  # the client went away
        pass
    finally:
        hub.unsubscribe(watcher)
    return response
