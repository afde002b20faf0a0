"""The Dramatiq broker from config, with Dramatiq's own middleware (and its worker tuned).

Retries are for transient faults only (the engine or Redis briefly away, a pod busy in another worker): a task
that can never succeed, such as an invalid pod, is dead-lettered at once (the actor logs why).
"""
from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, CurrentMessage, Middleware, Retries, TimeLimit

from edgeworkers.config import Settings
from edgeworkers.runtime.errors import RuntimeUnavailable

# Transient faults: worth a retry with back-off.
TRANSIENT = (RuntimeUnavailable, redis.ConnectionError, redis.TimeoutError, dramatiq.errors.BrokerConnectionError)

# Tasks a worker process holds per thread (Dramatiq's default: 2), and how often an idle queue is polled at least
# (Dramatiq's default: every second); see WorkerTuning.
PREFETCH_PER_THREAD = 8
IDLE_POLL_MS = 200

# Out of a million Redis commands, how many also run queue maintenance (requeueing the tasks of dead workers).
# Dramatiq's default (1,000) leaves a SIGKILLed worker's tasks waiting for over a minute on a quiet edge.
MAINTENANCE_CHANCE = 100_000


def retry_policy(max_retries: int):
    """``Retries.retry_when``: transient faults up to ``max_retries``; ``Retry`` (pod busy) always; else never."""

    def retry_when(retries: int, exception: BaseException) -> bool:
        if isinstance(exception, dramatiq.Retry):
            return True
        return isinstance(exception, TRANSIENT) and retries < max_retries

    return retry_when


class WorkerTuning(Middleware):
    """Dramatiq's worker defaults, tuned for pod syncs; its own environment variables, when set, still win.

    - Prefetch ``per_thread`` tasks per thread instead of 2: Dramatiq's Redis consumer backs off (up to the
      worker timeout) whenever its prefetch is full, so with the default a burst of pod adds leaves threads idle
      between syncs (ops/bench/pods.py: 0.70 of raw Docker's rate, 0.90-0.95 with this).
    - Poll an idle queue at least every ``idle_poll_ms`` instead of every second: how late an idle worker
      notices a new pod (a few cheap Redis calls per second while idle).
    """

    def __init__(self, per_thread: int = PREFETCH_PER_THREAD, idle_poll_ms: int = IDLE_POLL_MS) -> None:
        self.per_thread = per_thread
        self.idle_poll_ms = idle_poll_ms

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not os.getenv("dramatiq_queue_prefetch"):
            worker.queue_prefetch = worker.worker_threads * self.per_thread
        if not os.getenv("dramatiq_worker_timeout"):
            worker.worker_timeout = self.idle_poll_ms


def make_broker(settings: Settings, *, namespace: str = "dramatiq", prometheus: bool = False) -> RedisBroker:
    """Build the broker and make it Dramatiq's global one (actors declared afterwards bind to it)."""
    middleware: list[Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=settings.task_time_limit_ms),
        Callbacks(),
        Retries(
            max_retries=settings.task_max_retries,
            min_backoff=settings.task_min_backoff_ms,
            max_backoff=settings.task_max_backoff_ms,
            retry_when=retry_policy(settings.task_max_retries),
        ),
        CurrentMessage(),
        WorkerTuning(),
    ]
    if prometheus:
        from dramatiq.middleware.prometheus import Prometheus

        middleware.insert(0, Prometheus())
    broker = RedisBroker(
        url=settings.redis_url,
        namespace=namespace,
        middleware=middleware,
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=MAINTENANCE_CHANCE,
    )
    dramatiq.set_broker(broker)
    return broker
