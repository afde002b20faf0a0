"""The Dramatiq broker from config, with Dramatiq's own middleware.

Workers wake when a task is enqueued rather than polling Redis (``edgeworkers.wakeup``). Dramatiq's prefetch (2 tasks
per thread) is kept: a consumer whose prefetch is full fetches again as soon as a task is acknowledged, so a deeper
prefetch no longer keeps threads busy in a burst (ops/bench/pods.py: 0.94 and 1.05 of raw Docker's rate with 2 per
thread, 0.91 with 8, on a busy machine), while it would pile a burst onto one worker process and hold more tasks back
when a process is killed.

Retries are for transient faults only (the engine or Redis briefly away, a pod busy in another worker): a task
that can never succeed, such as an invalid pod, is dead-lettered at once (the actor logs why).
"""
from __future__ import annotations

import copy
import logging
import os
import time
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import AgeLimit, Callbacks, CurrentMessage, Middleware, Retries, TimeLimit, TimeLimitExceeded

from edgeworkers.config import Settings
from edgeworkers.runtime.errors import RuntimeUnavailable
from edgeworkers.wakeup import WakingRedisBroker

# Transient faults: worth a retry with back-off.
TRANSIENT = (RuntimeUnavailable, redis.ConnectionError, redis.TimeoutError, dramatiq.errors.BrokerConnectionError)
# Redis away: what a re-enqueue may meet (see DurableRetries).
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError, dramatiq.errors.BrokerConnectionError)
# How often DurableRetries tries again to re-enqueue a task while Redis is away.
REENQUEUE_EVERY_S = 2.0

log = logging.getLogger(__name__)

# Out of a million Redis commands, how many also run queue maintenance (requeueing the tasks of dead workers), on a
# busy queue; an idle consumer's fetch always runs it (edgeworkers.wakeup). Dramatiq's default (1,000) would leave a
# SIGKILLed worker's tasks waiting for minutes behind a steady stream of other tasks.
MAINTENANCE_CHANCE = 100_000


class TransientFault(dramatiq.Retry):
    """A task met a transient fault (logged by the actor in one line): retried with back-off, up to the limit."""


def retry_policy(max_retries: int):
    """``Retries.retry_when``: transient faults up to ``max_retries``; any other ``Retry`` (pod busy) always;
    else never. A task that hit the time limit (a slow pull on a poor link) counts as transient: its retry
    reconciles from where Docker is now, so it is retried, never dead-lettered."""

    def retry_when(retries: int, exception: BaseException) -> bool:
        if isinstance(exception, (TransientFault, TimeLimitExceeded, *TRANSIENT)):
            return retries < max_retries
        return isinstance(exception, dramatiq.Retry)

    return retry_when


class DurableRetries(Retries):
    """Dramatiq's Retries, whose re-enqueue of a task outlasts a Redis outage.

    Stock Retries enqueues the retry once; when Redis is away at that moment (the very fault that failed the task,
    often) the enqueue fails, Dramatiq logs it, and once Redis is back the worker acks the original: the task is
    lost. Here the re-enqueue is tried again every ``every_s`` until Redis answers, as Dramatiq itself retries the
    ack, holding the worker thread meanwhile (no task can be fetched from an absent Redis anyway).
    """

    def __init__(self, *, every_s: float = REENQUEUE_EVERY_S, **options: Any) -> None:
        super().__init__(**options)
        self.every_s = every_s

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        before = copy.deepcopy(message.options)
        while True:
            try:
                return super().after_process_message(broker, message, result=result, exception=exception)
            except REDIS_AWAY as exc:
                log.warning("cannot re-enqueue %s (%s); trying again in %gs", message, exc, self.every_s)
                message.options.clear()
                message.options.update(copy.deepcopy(before))  # as before the attempt: count the retry once
                time.sleep(self.every_s)


def make_broker(
    settings: Settings, client: redis.Redis, *, namespace: str = "dramatiq", prometheus: bool | None = None
) -> WakingRedisBroker:
    """Build the broker on the process's Redis ``client`` and make it Dramatiq's global one.

    ``prometheus`` adds Dramatiq's own Prometheus middleware; by default, only in the processes of `edgeworkers
    worker` with ``queue_metrics_port`` set. Its exposition is served by a fork of the `dramatiq` command, which binds
    ``dramatiq_prom_host`` (Dramatiq's default: every address) from the command's environment; it has no
    authentication, so `edgeworkers worker` sets 127.0.0.1 there, and the middleware is never added without it."""
    loopback = os.environ.get("dramatiq_prom_host") == "127.0.0.1"
    if prometheus is None:
        prometheus = bool(settings.queue_metrics_port) and loopback
    middleware: list[Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=settings.task_time_limit_ms),
        Callbacks(),
        DurableRetries(
            max_retries=settings.task_max_retries,
            min_backoff=settings.task_min_backoff_ms,
            max_backoff=settings.task_max_backoff_ms,
            retry_when=retry_policy(settings.task_max_retries),
        ),
        CurrentMessage(),
    ]
    if prometheus:
        if not loopback:
            raise RuntimeError("the queues' Prometheus exposition must bind 127.0.0.1 (dramatiq_prom_host)")
        from dramatiq.middleware.prometheus import Prometheus

        middleware.insert(0, Prometheus())
    broker = WakingRedisBroker(
        # A client, not a URL: Dramatiq builds its pool from a URL alone and drops ``password`` and timeouts.
        client=client,
        namespace=namespace,
        middleware=middleware,
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=MAINTENANCE_CHANCE,
    )
    dramatiq.set_broker(broker)
    return broker
