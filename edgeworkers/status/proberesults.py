"""The probe results store (kubelet's ``prober/results``): the prober writes each container's readiness and startup
results, the pod status reads them.

The prober runs in the agent's process and the pod workers may run in another, so the results live in Redis: a hash
per container id (``constants.KEY_PROBE``), ``{"readiness"|"startup": "1"|"0"}``; no entry is no result yet (not ready,
not started). The prober writes a result on every run, not only when it changed, so a write that failed (Redis away)
or a key lost (Redis flushed) is made good by the next run; ``set`` tells whether the stored result changed, for the
prober to sync the pod then. A restarted prober seeds its probes from what is stored (``prober.policy.ProbeState``). It lives beside the status generation rather than under ``prober/`` because the worker's status, a lower
layer than the prober, reads it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import redis

from edgeworkers import constants

# Probe results by container id (the bare id): {"readiness": bool, "startup": bool}, a missing entry meaning no
# result yet.
ProbeResults = Mapping[str, Mapping[str, bool]]


class ProbeResultsStore(Protocol):
    def set(self, container_id: str, kind: str, success: bool) -> bool:
        """Store one result (idempotent: the prober publishes on every run); True when the stored one changed."""

    def get(self, container_ids: Iterable[str]) -> ProbeResults: ...

    def forget(self, container_id: str) -> None: ...


def probe_key(container_id: str) -> str:
    return f"{constants.KEY_PROBE}:{container_id}"


class RedisProbeResults:
    """The results in the agent's Redis, shared by its processes."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def set(self, container_id: str, kind: str, success: bool) -> bool:
        value = "1" if success else "0"
        pipe = self._redis.pipeline(transaction=True)
        pipe.hget(probe_key(container_id), kind)
        pipe.hset(probe_key(container_id), kind, value)
        before, _ = pipe.execute()
        return before != value.encode()

    def get(self, container_ids: Iterable[str]) -> ProbeResults:
        """The results of these containers, in one round trip."""
        ids = list(container_ids)
        pipe = self._redis.pipeline(transaction=False)
        for ident in ids:
            pipe.hgetall(probe_key(ident))
        return {
            ident: {field.decode(): value == b"1" for field, value in found.items()}
            for ident, found in zip(ids, pipe.execute())
            if found
        }

    def forget(self, container_id: str) -> None:
        self._redis.delete(probe_key(container_id))


class MemoryProbeResults:
    """The results in this process's memory (unit tests)."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, bool]] = {}

    def set(self, container_id: str, kind: str, success: bool) -> bool:
        results = self.results.setdefault(container_id, {})
        before, results[kind] = results.get(kind), success
        return before != success

    def get(self, container_ids: Iterable[str]) -> ProbeResults:
        return {ident: dict(self.results[ident]) for ident in container_ids if ident in self.results}

    def forget(self, container_id: str) -> None:
        self.results.pop(container_id, None)
