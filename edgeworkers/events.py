"""Kubernetes events for what the node does to a pod (kubelet's recorder), through the status outbox.

An event is named ``<pod>.<hash of uid, reason, message, field path>``, so a repeat is the same event: its
``count`` rises (kept in Redis for an hour, as kubelet's aggregation cache), and in the outbox the pending copy is
replaced by the newer one; the bridge's uplink creates it at the cloud or patches its count
(``bridge.uplink``). Best effort, as kubelet's: an event that cannot be recorded is logged and dropped.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.metamanager.outbox import Outbox

log = logging.getLogger(__name__)

KEY_EVENTS = "edgeworkers:events"  # f"{KEY_EVENTS}:{namespace}/{event name}" -> hash {count, first}
AGGREGATE_S = 3600
NORMAL, WARNING = "Normal", "Warning"


def event_name(pod_name: str, uid: str, reason: str, message: str, field_path: str = "") -> str:
    digest = hashlib.sha256("\0".join((uid, reason, message, field_path)).encode()).hexdigest()[:16]
    return f"{pod_name}.{digest}"


def pod_event(
    pod: Pod, reason: str, message: str, kind: str, node: str, count: int, first: float, last: float,
    field_path: str = "",
) -> dict[str, Any]:  # fmt: skip
    """A core/v1 Event about ``pod`` as kubelet records it."""
    meta = pod.metadata
    involved: dict[str, Any] = {"kind": "Pod", "apiVersion": "v1", "namespace": meta.namespace, "name": meta.name,
                                "uid": meta.uid}  # fmt: skip
    if field_path:
        involved["fieldPath"] = field_path
    name = event_name(meta.name or "", meta.uid or "", reason, message, field_path)
    return _event(name, meta.namespace or "default", involved, reason, message, kind, node, count, first, last)


def node_event(node: str, reason: str, message: str, kind: str, count: int, first: float, last: float) -> dict[str, Any]:
    """A core/v1 Event about this node (in ``default``, the node's name standing for its uid, as kubelet does)."""
    involved = {"kind": "Node", "name": node, "uid": node}
    return _event(event_name(node, node, reason, message), "default", involved, reason, message, kind, node, count,
                  first, last)


def _event(
    name: str, namespace: str, involved: dict[str, Any], reason: str, message: str, kind: str, node: str, count: int,
    first: float, last: float,
) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": format_time(first),
        "lastTimestamp": format_time(last),
        "count": count,
        "type": kind,
        "reportingComponent": "kubelet",
        "reportingInstance": node,
    }


class EventRecorder:
    def __init__(self, client: redis.Redis, node: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._outbox = Outbox(client)
        self._node = node
        self._clock = clock

    def __call__(self, pod: Pod, reason: str, message: str, kind: str = NORMAL, field_path: str = "") -> None:
        """Record one occurrence (aggregated); never raises."""
        name = event_name(pod.metadata.name, pod.metadata.uid or "", reason, message, field_path)

        def build(count: int, first: float, now: float) -> dict[str, Any]:
            return pod_event(pod, reason, message, kind, self._node, count, first, now, field_path)

        self._record(pod.metadata.namespace or "default", name, build, f"pod {pod.key}", reason)

    def node(self, reason: str, message: str, kind: str = WARNING) -> None:
        """Record one occurrence of an event about the node itself (FreeDiskSpaceFailed ...); never raises."""

        def build(count: int, first: float, now: float) -> dict[str, Any]:
            return node_event(self._node, reason, message, kind, count, first, now)

        self._record("default", event_name(self._node, self._node, reason, message), build, "the node", reason)

    def _record(self, namespace: str, name: str, build: Callable[[int, float, float], dict[str, Any]], what: str,
                reason: str) -> None:  # fmt: skip
        now = self._clock()
        key = f"{KEY_EVENTS}:{namespace}/{name}"
        try:
            pipe = self._redis.pipeline()
            pipe.hincrby(key, "count", 1)
            pipe.hsetnx(key, "first", repr(now))
            pipe.hget(key, "first")
            pipe.expire(key, AGGREGATE_S)
            count, _, first, _ = pipe.execute()
            self._outbox.event(namespace, build(int(count), float(first), now))
        except redis.RedisError as exc:
            log.info("event %s for %s not recorded: %s", reason, what, exc)
