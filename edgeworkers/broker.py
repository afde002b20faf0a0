"""The Dramatiq broker from config, with Dramatiq's own middleware.

Workers wake when a task is enqueued rather than polling Redis (``edgeworkers.wakeup``). Dramatiq's prefetch (2 tasks
per thread) is kept: a consumer whose prefetch is full fetches again as soon as a task is acknowledged, so a deeper
prefetch no longer keeps threads busy in a burst (ops/bench/pods.py: 0.94 and 1.05 of raw Docker's rate with 2 per
thread, 0.91 with 8, on a busy machine), while it would pile a burst onto one worker process and hold more tasks back
when a process is killed.

Every failed task is retried with back-off (about a day at the 60 s cap), not only the transient faults (the engine or
Redis briefly away): an unknown error (a Redis ``MISCONF`` on a full disk, an undecryptable secret, a bug) must not end
a pod's chain of follow-up syncs, or a pod in back-off would never be restarted. Only a task that can never succeed,
an invalid pod's, is dead-lettered at once (the actor logs why). Every dead letter is logged with its pod and counted
(``DeadLetters``).
"""
from __future__ import annotations

import copy
import logging
import os
import time
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import AgeLimit, Callbacks, CurrentMessage, Middleware, Retries, TimeLimit

from edgeworkers import constants
from edgeworkers.config import Settings
from edgeworkers.metamanager.memory import StoreFull, explain
from edgeworkers.runtime.errors import RuntimeUnavailable
from edgeworkers.wakeup import WakingRedisBroker

# Redis away, or full (at its memory cap: metamanager.memory): what a re-enqueue may meet (see DurableRetries).
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError, dramatiq.errors.BrokerConnectionError, StoreFull)
# Transient faults: worth a retry with back-off, logged in one line.
TRANSIENT = (RuntimeUnavailable, *REDIS_AWAY)
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
    """``Retries.retry_when``: a ``Retry`` that is not a fault (pod busy) always; any fault, transient, a time limit
    hit (a slow pull on a poor link) or unknown, up to ``max_retries``: its retry reconciles from where Docker is
    now. (An invalid pod's task never gets here: the actors' ``throws`` dead-letters it at once.)"""

    def retry_when(retries: int, exception: BaseException) -> bool:
        if isinstance(exception, dramatiq.Retry) and not isinstance(exception, TransientFault):
            return True
        return retries < max_retries

    return retry_when


class DeadLetters(Middleware):
    """Each task given up (dead-lettered) is logged with its pod and counted in the agent's Redis
    (``constants.KEY_DEAD_LETTERS``, exported by the agent's metrics endpoint whichever process gave it up)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        key = message.args[0] if message.args else "?"
        log.error("pod %s: task %s dead-lettered after %d retries", key, message.actor_name,
                  message.options.get("retries", 0))  # fmt: skip
        try:
            self._client.incr(constants.KEY_DEAD_LETTERS)
        except redis.RedisError as exc:
            log.warning("pod %s: the dead letter is not counted: %s", key, exc)


class DurableRetries(Retries):
    """Dramatiq's Retries, whose re-enqueue of a task outlasts a Redis outage.

    Stock Retries enqueues the retry once; when Redis is away or full at that moment (the very fault that failed the
    task, often) the enqueue fails, Dramatiq logs it, and once Redis is back the worker acks the original: the task is
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
                log.warning("cannot re-enqueue %s (%s); trying again in %gs", message, explain(exc), self.every_s)
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
        DeadLetters(client),
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
