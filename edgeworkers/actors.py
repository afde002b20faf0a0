"""The pod actors: decode the task, call ``pods.reconcile.run_task``, map transient faults to retries. Nothing else.

``declare`` binds them to a process's broker and pod workers (``wiring`` calls it for a process that runs a worker;
the `dramatiq` command loads ``edgeworkers.workerprocess``, which does the same). Nothing happens on import: no broker
is built, no client made. The actors carry the names that ``edgeworkers.tasks`` enqueues by.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from edgeworkers import tasks
from edgeworkers.broker import TRANSIENT, TransientFault
from edgeworkers.metamanager.memory import explain
from edgeworkers.pods.reconcile import InvalidPod, PodWorkers, run_task

log = logging.getLogger(__name__)

# Each actor and whether its task is the pod's scheduled follow-up sync (which may schedule the next one).
FOLLOW_UP = {tasks.ADD_POD: False, tasks.UPDATE_POD: False, tasks.DELETE_POD: False, tasks.SYNC_POD: True}


def run(workers: PodWorkers, key: str, message: dict[str, Any], follow_up: bool = False) -> None:
    """One task. A transient fault is logged in one line and retried with back-off (Dramatiq's Retries), not a
    traceback."""
    try:
        run_task(workers, key, message, follow_up)
    except TRANSIENT as exc:
        current_message = CurrentMessage.get_current_message()
        retries = current_message.options.get("retries", 0) if current_message else 0
        if retries < workers.settings.task_max_retries:
            log.warning("pod %s: %s; retrying with back-off", key, explain(exc))
        else:
            log.error("pod %s: %s; giving up after %d retries", key, explain(exc), retries)
        raise TransientFault(f"pod {key}: {exc}") from exc


def _actor_function(workers: PodWorkers, name: str) -> Callable[[str, dict[str, Any]], None]:
    follow_up = FOLLOW_UP[name]

    def perform(key: str, message: dict[str, Any]) -> None:
        run(workers, key, message, follow_up)

    perform.__name__ = perform.__qualname__ = name
    return perform


def declare(broker: dramatiq.Broker, workers: PodWorkers) -> dict[str, dramatiq.Actor]:
    """The four pod actors on ``broker``, running their tasks with ``workers``; by actor name."""
    return {
        name: dramatiq.actor(
            _actor_function(workers, name), actor_name=name, queue_name=tasks.QUEUE_OF[name], broker=broker,
            throws=(InvalidPod,),
        )
        for name in FOLLOW_UP
    }
