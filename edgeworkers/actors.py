"""The pod actors: decode the task, call ``pods.reconcile.run_task``, map transient faults to retries. Nothing else.

Run with ``dramatiq edgeworkers.actors`` (``edgeworkers worker``). The actors are declared under the names that
``edgeworkers.tasks`` enqueues by.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from edgeworkers import constants, tasks
from edgeworkers.broker import TRANSIENT, TransientFault, make_broker
from edgeworkers.config import settings
from edgeworkers.pods.reconcile import Agent, InvalidPod, build_agent, run_task

log = logging.getLogger(__name__)

broker = make_broker(settings())

_agent: Agent | None = None
_agent_lock = threading.Lock()


def agent() -> Agent:
    """The worker process's agent, built once on first use."""
    global _agent
    with _agent_lock:
        if _agent is None:
            _agent = build_agent(settings(), broker)
        return _agent


def _run(key: str, message: dict[str, Any], follow_up: bool = False) -> None:
    """A transient fault is logged in one line and retried with back-off (Dramatiq's Retries), not a traceback."""
    try:
        run_task(agent(), key, message, follow_up)
    except TRANSIENT as exc:
        current_message = CurrentMessage.get_current_message()
        retries = current_message.options.get("retries", 0) if current_message else 0
        if retries < settings().task_max_retries:
            log.warning("pod %s: %s: %s; retrying with back-off", key, type(exc).__name__, exc)
        else:
            log.error("pod %s: %s: %s; giving up after %d retries", key, type(exc).__name__, exc, retries)
        raise TransientFault(f"pod {key}: {exc}") from exc


@dramatiq.actor(actor_name=tasks.ADD_POD, queue_name=constants.QUEUE_POD_ADD, throws=(InvalidPod,))
def add_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message)


@dramatiq.actor(actor_name=tasks.UPDATE_POD, queue_name=constants.QUEUE_POD_UPDATE, throws=(InvalidPod,))
def update_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message)


@dramatiq.actor(actor_name=tasks.DELETE_POD, queue_name=constants.QUEUE_POD_DELETE, throws=(InvalidPod,))
def delete_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message)


@dramatiq.actor(actor_name=tasks.SYNC_POD, queue_name=constants.QUEUE_POD_SYNC, throws=(InvalidPod,))
def sync_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message, follow_up=True)
