"""The shape every workload controller shares, as kube-controller-manager's: a work queue of object keys filled from the
store's events, each key synced by itself, a failed sync retried with back-off, and a full resync now and then.

A subclass says which keys an event concerns (``keys_for``: the owner of a changed pod, say) and what one sync does
(``sync``: read the store, write what is missing, return when to look again). Syncs run on the event loop, one at a
time, on the store's in-memory view, so a sync never races another; what a sync writes is published to the hub (and
so to its own ``keys_for``) once committed. Unit tests call ``sync`` directly with a fake clock.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable

import structlog

from edgeworkers.cloud.store import Clock, Event, Store
from edgeworkers.cloud.watch import Hub

log = structlog.get_logger(__name__)

Key = tuple[str, str]  # (namespace, name); the garbage collector's: (resource, "namespace/name")
Holder = tuple[str, Key]  # (controller name, key): who booked tokens
# client-go's default controller rate limiter: per-item exponential back-off, 5 ms doubling to 1000 s.
BACKOFF_BASE_S, BACKOFF_MAX_S = 0.005, 1000.0


def backoff_s(failures: int) -> float:
    """The wait before the ``failures``-th retry of one key (1 is the first)."""
    return min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_MAX_S)


class TokenBucket:
    """The pace of the controllers' writes, one bucket for all of them as kube-controller-manager's client is paced by
    ``flowcontrol.NewTokenBucketRateLimiter(qps, burst)``: ``burst`` tokens at first, ``qps`` more a second, at most
    ``burst`` kept. A sync never waits for tokens (it runs on the event loop): one that finds too few books those it
    lacks, at most ``burst`` (the balance goes below zero, as ``rate.Limiter.Reserve``), and comes back when they are
    paid for; bookings are paid in turn, so waiting syncs do not all wake to find the bucket empty."""

    EXPIRY_S = 60.0  # a booking not taken this long after it was due is dropped (the bucket has refilled since)

    def __init__(self, qps: float, burst: int, clock: Clock) -> None:
        self.qps, self.burst, self.clock = qps, burst, clock
        self._tokens, self._last = float(burst), clock()
        self._booked: dict[Holder, tuple[int, dt.datetime]] = {}  # holder -> (tokens, when they are paid for)

    def take(self, holder: Holder, want: int) -> tuple[int, float | None]:
        """Up to ``want`` tokens for ``holder``: how many it may use now and, when fewer than ``want``, the seconds
        after which to ask again (its booking is then paid for)."""
        now = self.clock()
        self._put((now - self._last).total_seconds() * self.qps)
        self._last = now
        for other, (_count, due) in list(self._booked.items()):
            if (now - due).total_seconds() > self.EXPIRY_S:
                del self._booked[other]
        granted = 0
        if (booking := self._booked.get(holder)) is not None:
            count, due = booking
            if due > now:
                return 0, (due - now).total_seconds()
            del self._booked[holder]
            granted = min(count, want)
            self._put(count - granted)
        extra = max(min(int(self._tokens), want - granted), 0)
        self._tokens -= extra
        granted += extra
        if granted >= want:
            return granted, None
        book = min(want - granted, self.burst)
        self._tokens -= book
        wait = -self._tokens / self.qps
        self._booked[holder] = (book, now + dt.timedelta(seconds=wait))
        return granted, wait

    def _put(self, tokens: float) -> None:
        self._tokens = min(self._tokens + max(tokens, 0.0), float(self.burst))


class Controller:
    """A work queue of keys and a loop syncing them; subclasses define ``name``, ``resource``, ``keys_for``, ``sync``."""

    name = "controller"
    resource = ""  # the kind it owns: every object of it is synced at start and on each resync

    def __init__(self, store: Store, hub: Hub, clock: Clock, resync_s: float = 30.0,
                 limiter: TokenBucket | None = None) -> None:
        self.store, self.hub, self.clock = store, hub, clock
        self.resync_s = resync_s
        self.limiter = limiter  # None: writes are not paced
        self._queue: dict[Key, None] = {}  # insertion-ordered, a key once
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()
        hub.add_listener(self._on_event)
        store.on_rollback(self.enqueue_all)  # a failed commit undid writes: look at everything again

    # -- what a subclass defines ----------------------------------------------------------------

    def keys_for(self, event: Event) -> Iterable[Key]:
        """The keys an event concerns (by default: the object itself when it is of ``resource``)."""
        if event.resource == self.resource:
            meta = event.object["metadata"]
            yield meta.get("namespace", ""), meta["name"]

    def sync(self, key: Key) -> float | None:
        """Bring one object's world to its spec; the seconds after which to look again (a deadline), or None."""
        raise NotImplementedError

    def pace(self, obj: dict, want: int) -> tuple[int, float | None]:
        """How many of ``want`` writes the sync of ``obj`` may make now, and when to sync it again for the rest (None:
        all of them now). Running out of tokens is no failure: the sync writes what it may and returns the wait."""
        if self.limiter is None or want <= 0:
            return want, None
        meta = obj["metadata"]
        return self.limiter.take((self.name, (meta.get("namespace", ""), meta["name"])), want)

    # -- the queue ------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        for key in self.keys_for(event):
            self.enqueue(key)

    def enqueue(self, key: Key, after_s: float = 0.0) -> None:
        if after_s > 0:
            loop = asyncio.get_running_loop()
            if (timer := self._timers.get(key)) is not None and timer.when() <= loop.time() + after_s:
                return  # already due sooner
            if timer is not None:
                timer.cancel()
            self._timers[key] = loop.call_later(after_s, self._due, key)
            return
        self._queue[key] = None
        self._wake.set()

    def _due(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    def enqueue_all(self) -> None:
        for obj in self.store.list(self.resource):
            meta = obj["metadata"]
            self._queue[(meta.get("namespace", ""), meta["name"])] = None
        self._wake.set()

    def process(self, key: Key) -> None:
        """Sync one key: a failure is logged and retried with back-off, a deadline is kept."""
        try:
            again = self.sync(key)
        except Exception:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            log.exception("sync failed", controller=self.name, key="/".join(key), failures=failures)
            self.enqueue(key, backoff_s(failures))
            return
        self._failures.pop(key, None)
        if again is not None:
            self.enqueue(key, max(again, 0.001))

    async def run(self) -> None:
        self.enqueue_all()
        loop = asyncio.get_running_loop()
        next_resync = loop.time() + self.resync_s
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(next_resync - loop.time(), 0))
            except TimeoutError:
                pass
            self._wake.clear()
            if loop.time() >= next_resync:
                self.enqueue_all()
                next_resync = loop.time() + self.resync_s
            while self._queue:
                key = next(iter(self._queue))
                del self._queue[key]
                self.process(key)
                await asyncio.sleep(0)  # let requests and the other controllers in between keys
