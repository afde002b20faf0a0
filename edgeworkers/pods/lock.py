"""One pod's operations never overlap: a per-pod lease in Redis, held for the length of a sync.

The lease is short (``LEASE_S``) and renewed by a background thread while the sync runs, so a long stop
(a 30 s grace period) keeps it, yet a SIGKILLed worker's lease runs out within seconds and the redelivered task
can proceed. A busy pod is not waited for: the task raises ``PodBusy`` (a Dramatiq ``Retry``) at once, so it goes
back on its queue with a short delay instead of parking a worker thread (``wait_s`` > 0 waits, for callers that
prefer to).

A lease whose renewal fails is lost: at once when Redis says the lock is no longer ours, or once a whole lease has
passed without a successful renewal (Redis unreachable: another worker may own the pod by then). The sync checks
``ensure_held()`` before each of its steps and stops there with ``LeaseLost`` (retried like any transient fault).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
import redis
from redis.exceptions import LockError

from edgeworkers import constants

LEASE_S = 15.0
WAIT_S = 0.0
RETRY_DELAY_MS = 500

log = logging.getLogger(__name__)


class PodBusy(dramatiq.Retry):
    """Another worker is syncing this pod; try again shortly (control flow, not a failure)."""


class LeaseLost(dramatiq.Retry):
    """The pod's lock could not be renewed: this sync stops at its next step and the task is retried."""


class Lease:
    """The lock held for one pod; ``lost`` is set by the renewer once it can no longer be trusted."""

    def __init__(self, pod_key: str) -> None:
        self.pod_key = pod_key
        self.lost = threading.Event()


_held: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("pod_lease", default=None)


def ensure_held() -> None:
    """Raise LeaseLost when the lock of the pod this thread syncs was lost (no-op outside ``pod_lock``)."""
    lease = _held.get()
    if lease is not None and lease.lost.is_set():
        raise LeaseLost(f"the lock of pod {lease.pod_key} was lost; stopping this sync", delay=RETRY_DELAY_MS)


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
) -> Iterator[Lease]:
    """Hold the lock of ``pod_key`` ("namespace/name") for the block; raise PodBusy if not had (within ``wait_s``)."""
    # thread_local=False: the renewing thread must see the token the acquiring thread stored.
    lock = client.lock(lock_key(pod_key), timeout=lease_s, blocking_timeout=wait_s or None, thread_local=False)
    if not lock.acquire(blocking=wait_s > 0):
        raise PodBusy(f"pod {pod_key} is being synced by another worker", delay=retry_delay_ms)
    lease = Lease(pod_key)
    token = _held.set(lease)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lock, lease, lease_s, stop), daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        _held.reset(token)
        stop.set()
        renewer.join()
        try:
            lock.release()
        except (LockError, redis.RedisError):  # the lease ran out: another worker may own it
            log.warning("lock of pod %s was lost before release", pod_key)


def _renew(lock: redis.lock.Lock, lease: Lease, lease_s: float, stop: threading.Event) -> None:
    renewed = time.monotonic()
    while not stop.wait(lease_s / 3):
        try:
            lock.reacquire()
            renewed = time.monotonic()
        except LockError as exc:  # no longer ours (expired and taken, or deleted)
            log.warning("lock of pod %s lost: %s", lease.pod_key, exc)
            lease.lost.set()
            return
        except redis.RedisError as exc:
            if time.monotonic() - renewed >= lease_s:
                log.warning("lock of pod %s lost: not renewed for %gs: %s", lease.pod_key, lease_s, exc)
                lease.lost.set()
                return
            log.warning("cannot renew the lock of pod %s: %s", lease.pod_key, exc)
