"""Restart and image-pull back-off state, per (pod uid, name), as kubelet's flowcontrol.Backoff.

Kept in Redis so that back-off survives an agent restart and is shared by every worker process.
Crash back-off is per (pod uid, container name). Image-pull back-off is per image for the whole node
(``PULL_SCOPE``, ``pull_key(image)``): with no registry in reach, fifty pods of one image make one pull
attempt per back-off period, not fifty.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from typing import Protocol

import redis

from edgeworkers.constants import KEY_BACKOFF


@dataclass(frozen=True)
class BackoffEntry:
    """The current back-off ``delay`` (seconds), counted from ``since`` (epoch seconds of the last failure)."""

    delay: float
    since: float

    def remaining(self, now: float) -> float:
        """Seconds left before another attempt is allowed (0 when allowed now)."""
        return max(0.0, self.since + self.delay - now)


# The "uid" under which image-pull back-off is kept (pod uids are UUIDs, never this).
PULL_SCOPE = "node"


def pull_key(image: str) -> str:
    """The back-off name for pulling ``image``."""
    return f"pull:{image}"


class BackoffStore(Protocol):
    def get(self, uid: str, name: str) -> BackoffEntry | None: ...

    def put(self, uid: str, name: str, entry: BackoffEntry) -> None: ...

    def delete(self, uid: str, name: str) -> None: ...

    def forget_pod(self, uid: str) -> None:
        """Drop every entry of a pod (it was deleted)."""


class MemoryBackoffStore:
    """A process-local store, for tests and single-process use."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], BackoffEntry] = {}
        self._lock = threading.Lock()

    def get(self, uid: str, name: str) -> BackoffEntry | None:
        with self._lock:
            return self._entries.get((uid, name))

    def put(self, uid: str, name: str, entry: BackoffEntry) -> None:
        with self._lock:
            self._entries[(uid, name)] = entry

    def delete(self, uid: str, name: str) -> None:
        with self._lock:
            self._entries.pop((uid, name), None)

    def forget_pod(self, uid: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == uid]:
                del self._entries[key]


class RedisBackoffStore:
    """Entries as JSON under ``f"{KEY_BACKOFF}:{uid}/{name}"``.

    Each key expires after ``ttl_s`` without an update: by then the next failure resets the back-off anyway
    (a back-off never exceeds its maximum, and 10 minutes of running resets it), so no key outlives its pod.
    """

    def __init__(self, client: redis.Redis, ttl_s: float = 3600.0) -> None:
        self._redis = client
        self._ttl_ms = int(ttl_s * 1000)

    @staticmethod
    def _key(uid: str, name: str) -> str:
        return f"{KEY_BACKOFF}:{uid}/{name}"

    def get(self, uid: str, name: str) -> BackoffEntry | None:
        raw = self._redis.get(self._key(uid, name))
        return None if raw is None else BackoffEntry(**json.loads(raw))

    def put(self, uid: str, name: str, entry: BackoffEntry) -> None:
        self._redis.set(self._key(uid, name), json.dumps(asdict(entry)), px=self._ttl_ms)

    def delete(self, uid: str, name: str) -> None:
        self._redis.delete(self._key(uid, name))

    def forget_pod(self, uid: str) -> None:
        keys = list(self._redis.scan_iter(match=f"{KEY_BACKOFF}:{uid}/*", count=100))
        if keys:
            self._redis.delete(*keys)
