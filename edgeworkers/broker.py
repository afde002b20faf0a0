"""The Dramatiq broker from config, with Dramatiq's own middleware.

Retries are for transient faults only (the engine or Redis briefly away, a pod busy in another worker): a task
that can never succeed, such as an invalid pod, is dead-lettered at once (the actor logs why).
"""
from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, CurrentMessage, Middleware, Retries, TimeLimit

from edgeworkers.config import Settings
from edgeworkers.runtime.errors import RuntimeUnavailable

# Transient faults: worth a retry with back-off.
TRANSIENT = (RuntimeUnavailable, redis.ConnectionError, redis.TimeoutError, dramatiq.errors.BrokerConnectionError)

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
