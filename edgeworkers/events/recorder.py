"""Kubernetes events for what the node does to a pod or to itself (kubelet's recorder), through the status outbox.

Each occurrence goes through the event correlation of client-go (``events.correlator``): similar events are combined,
a repeat is the same event with a higher ``count``, and each object may send 25 events at once, then one every 5
minutes. The correlation state of each object is kept in Redis (one JSON value, under a WATCH transaction, expiring
when it would be a fresh object's again), so every process of the node (worker, prober, eviction) counts the same
events and shares one bucket per object. The event goes to the outbox under its name, replacing a pending copy; the
bridge's uplink creates it at the cloud, or patches its count (``bridge.uplink``). Best effort, as kubelet's: an
event that cannot be recorded is logged and dropped.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

from edgeworkers.constants import KEY_EVENTS
from edgeworkers.events.correlator import Correlated, CorrelatorPolicy, ObjectState, Occurrence, correlate
from edgeworkers.k8s.event import node_event, pod_event
from edgeworkers.metamanager.outbox import Outbox

if TYPE_CHECKING:  # the bridge records events without loading the pod models
    from edgeworkers.k8s.pod import Pod

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"


class EventRecorder:
    def __init__(
        self, client: redis.Redis, node: str, clock: Callable[[], float] = time.time, outbox: Outbox | None = None,
        policy: CorrelatorPolicy = CorrelatorPolicy(),
    ) -> None:  # fmt: skip
        self._redis = client
        self._outbox = outbox if outbox is not None else Outbox(client)
        self._node = node
        self._clock = clock
        self._policy = policy

    def __call__(self, pod: Pod, reason: str, message: str, kind: str = NORMAL, field_path: str = "") -> None:
        """Record one occurrence (correlated); never raises."""
        meta = pod.metadata
        namespace, name = meta.namespace or "default", meta.name or ""
        occurrence = Occurrence(name, kind, reason, message, field_path)

        def build(event: Correlated, now: float) -> dict[str, Any]:
            return pod_event(pod, event.name, reason, event.message, kind, self._node, event.count, event.first, now,
                             field_path)  # fmt: skip

        self._record(f"Pod/{namespace}/{name}/{meta.uid or ''}", namespace, occurrence, build, f"pod {pod.key}")

    def node(self, reason: str, message: str, kind: str = WARNING) -> None:
        """Record one occurrence of an event about the node itself (FreeDiskSpaceFailed ...); never raises."""

        def build(event: Correlated, now: float) -> dict[str, Any]:
            return node_event(self._node, reason, event.message, kind, event.count, event.first, now, event.name)

        self._record(f"Node//{self._node}/", "default", Occurrence(self._node, kind, reason, message), build,
                     "the node")  # fmt: skip

    def _record(self, subject: str, namespace: str, occurrence: Occurrence,
                build: Callable[[Correlated, float], dict[str, Any]], what: str) -> None:  # fmt: skip
        now = self._clock()
        try:
            event = self._correlate(f"{KEY_EVENTS}:{subject}", occurrence, now)
            if event.skip:
                log.debug("event %s for %s over its rate limit: not sent", occurrence.reason, what)
                return
            self._outbox.event(namespace, build(event, now))
        except redis.RedisError as exc:
            log.info("event %s for %s not recorded: %s", occurrence.reason, what, exc)

    def _correlate(self, key: str, occurrence: Occurrence, now: float) -> Correlated:
        """Correlate under a WATCH of the object's state: another process's event about it meanwhile retries."""
        verdict: list[Correlated] = []

        def update(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            state = ObjectState.from_dict(json.loads(raw)) if raw else ObjectState.fresh(self._policy, now)
            verdict[:] = [correlate(state, occurrence, now, self._policy)]
            pipe.multi()
            pipe.set(key, json.dumps(state.to_dict(), separators=(",", ":")), ex=int(self._policy.idle_s) + 1)

        self._redis.transaction(update, key)
        return verdict[0]
