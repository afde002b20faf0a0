"""One pod's operations never overlap: a per-pod lease in Redis, held for the length of a sync.

The lease is short (``LEASE_S``) and renewed by a background thread while the sync runs, so a long stop
(a 30 s grace period) keeps it, yet a SIGKILLed worker's lease runs out within seconds and the redelivered task
can proceed. Waiting for a busy pod is bounded: after ``wait_s`` the task raises ``PodBusy`` (a Dramatiq
``Retry``), so it goes back on its queue with a short delay instead of holding a worker thread or being dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
import redis
from redis.exceptions import LockError

from edgeworkers import constants

LEASE_S = 15.0
WAIT_S = 2.0
RETRY_DELAY_MS = 500

log = logging.getLogger(__name__)


class PodBusy(dramatiq.Retry):
    """Another worker is syncing this pod; try again shortly (control flow, not a failure)."""


def lock_key(pod_key: str) -> str:
    return f"{constants.KEY_POD_LOCK}:{pod_key}"


@contextmanager
def pod_lock(
    client: redis.Redis,
    pod_key: str,
    *,
    lease_s: float = LEASE_S,
    wait_s: float = WAIT_S,
    retry_delay_ms: int = RETRY_DELAY_MS,
) -> Iterator[None]:
    """Hold the lock of ``pod_key`` ("namespace/name") for the block; raise PodBusy if not had in ``wait_s``."""
    # thread_local=False: the renewing thread must see the token the acquiring thread stored.
    lock = client.lock(lock_key(pod_key), timeout=lease_s, blocking_timeout=wait_s, thread_local=False)
    if not lock.acquire():
        raise PodBusy(f"pod {pod_key} is being synced by another worker", delay=retry_delay_ms)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lock, pod_key, lease_s / 3, stop), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        try:
            lock.release()
        except LockError:  # the lease ran out (Redis unreachable for longer than it): another worker may own it
            log.warning("lock of pod %s was lost before release", pod_key)


def _renew(lock: redis.lock.Lock, pod_key: str, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            lock.reacquire()
        except (LockError, redis.RedisError) as exc:
            log.warning("cannot renew the lock of pod %s: %s", pod_key, exc)
