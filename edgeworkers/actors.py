"""The pod actors: thin wrappers that lock the pod, read its DESIRED state and let PodSyncer reconcile Docker.

Each task carries only the pod's key and the message that caused it; the worker never acts on the message's
copy of the pod. So a task retried, duplicated or overtaken by a later one does no harm: whichever runs last
sees the last desired state. One pod's tasks never overlap (``pods.lock``).

Run with ``dramatiq edgeworkers.actors`` (``edgeworkers worker``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import CurrentMessage

from edgeworkers import constants
from edgeworkers.broker import TRANSIENT, TransientFault, make_broker
from edgeworkers.config import settings
from edgeworkers.k8s.status import APIError
from edgeworkers.messages import Message
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.backoff import RedisBackoffStore
from edgeworkers.pods.desired import Send, decode_pod
from edgeworkers.pods.lock import PodBusy, pod_lock
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.docker import DockerRuntime

log = logging.getLogger(__name__)

broker = make_broker(settings())

PENDING_SLACK_MS = 30_000


class InvalidPod(Exception):
    """The desired pod fails validation: no retry can fix it (the task is dead-lettered)."""


@dataclass(frozen=True)
class Agent:
    """What a worker process needs, built once per process on first use."""

    redis: redis.Redis
    store: MetaStore
    syncer: PodSyncer


_agent: Agent | None = None
_agent_lock = threading.Lock()


def agent() -> Agent:
    global _agent
    with _agent_lock:
        if _agent is None:
            config = settings()
            client = redis.Redis.from_url(config.redis_url)
            runtime = DockerRuntime(config.node_name, docker_host=config.docker_host, sandbox_image=config.sandbox_image)
            _agent = Agent(client, MetaStore(client), PodSyncer(runtime, RedisBackoffStore(client), config))
        return _agent


def reconcile(agent: Agent, key: str) -> float | None:
    """Sync pod ``key`` to its desired state under its lock; return the delay of the follow-up sync, if any.

    A pod marked deleted leaves the desired state once its containers are gone.
    """
    namespace, name = key.split("/", 1)
    with pod_lock(agent.redis, key, lease_s=settings().pod_lock_lease_s):
        desired = agent.store.get(POD, namespace, name)
        deleting = bool(desired and desired["metadata"].get("deletionTimestamp"))
        pod = None
        if desired is not None:
            try:
                pod = decode_pod(desired)
            except APIError as error:
                if not deleting:  # an invalid pod being deleted: just kill it
                    log.warning("pod %s is invalid and will not be run: %s", key, error)
                    agent.store.put_pod_status(key, {"phase": "Failed", "reason": "Invalid", "message": str(error)})
                    raise InvalidPod(f"pod {key} is invalid: {error}") from error
        result = agent.syncer.sync(key, pod, agent.store.get_pod_status(key))
        if result.status is not None:
            agent.store.put_pod_status(key, result.status)
            return result.requeue_after
        agent.store.delete_pod_status(key)
        if deleting:  # unless the pod was applied anew meanwhile (another resourceVersion)
            agent.store.delete(POD, namespace, name, resource_version=desired["metadata"].get("resourceVersion"))
    return result.requeue_after


def remove_orphans(agent: Agent) -> list[str]:
    """Remove the containers of pods absent from the desired state; return their keys.

    Each pod is killed under its lock after checking again that it is not desired, so a pod added between
    reading the desired keys and listing Docker is left alone (as is a pod being synced right now).
    """
    removed = []
    for key in agent.syncer.orphans(agent.store.keys(POD)):
        namespace, name = key.split("/", 1)
        try:
            with pod_lock(agent.redis, key, lease_s=settings().pod_lock_lease_s):
                if agent.store.get(POD, namespace, name) is None and agent.syncer.kill_pod(
                    key, settings().default_grace_period_s
                ):
                    removed.append(key)
        except PodBusy:
            log.info("pod %s is being synced: not an orphan now", key)
    if removed:
        log.info("removed the containers of %d orphaned pod(s): %s", len(removed), ", ".join(removed))
    return removed


def schedule_sync(client: redis.Redis, key: str, message: dict[str, Any], delay_s: float) -> bool:
    """Enqueue ``sync_pod`` after ``delay_s`` unless one is already due as soon; True when enqueued.

    Without this, every add/update would start its own chain of follow-up syncs.
    """
    delay_ms = max(0, int(delay_s * 1000))
    pending = f"{constants.KEY_SYNC_PENDING}:{key}"
    remaining_ms = client.pttl(pending) - PENDING_SLACK_MS
    if remaining_ms > 0 and remaining_ms <= delay_ms + 1000:
        return False
    client.set(pending, 1, px=delay_ms + PENDING_SLACK_MS)
    sync_pod.send_with_options(args=(key, message), delay=delay_ms)
    return True


def _run(key: str, message: dict[str, Any], follow_up: bool = False) -> None:
    """Reconcile pod ``key`` and schedule its follow-up sync; a transient fault is logged in one line and
    retried with back-off (Dramatiq's Retries), instead of a traceback. ``follow_up``: this is the pod's
    scheduled sync, so the next one may be scheduled."""
    log.debug("sync of pod %s for message %s", key, message.get("header", {}).get("msg_id"))
    try:
        current = agent()
        if follow_up:
            current.redis.delete(f"{constants.KEY_SYNC_PENDING}:{key}")
        requeue_after = reconcile(current, key)
        if requeue_after is not None:
            schedule_sync(current.redis, key, message, requeue_after)
    except TRANSIENT as exc:
        current_message = CurrentMessage.get_current_message()
        retries = current_message.options.get("retries", 0) if current_message else 0
        if retries < settings().task_max_retries:
            log.warning("pod %s: %s: %s; retrying with back-off", key, type(exc).__name__, exc)
        else:
            log.error("pod %s: %s: %s; giving up after %d retries", key, type(exc).__name__, exc, retries)
        raise TransientFault(f"pod {key}: {exc}") from exc


@dramatiq.actor(queue_name=constants.QUEUE_POD_ADD, throws=(InvalidPod,))
def add_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message)


@dramatiq.actor(queue_name=constants.QUEUE_POD_UPDATE, throws=(InvalidPod,))
def update_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message)


@dramatiq.actor(queue_name=constants.QUEUE_POD_DELETE, throws=(InvalidPod,))
def delete_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message)


@dramatiq.actor(queue_name=constants.QUEUE_POD_SYNC, throws=(InvalidPod,))
def sync_pod(key: str, message: dict[str, Any]) -> None:
    _run(key, message, follow_up=True)


_BY_OPERATION = {"insert": add_pod, "update": update_pod, "delete": delete_pod}


def sender(target: dramatiq.Broker) -> Send:
    """A ``Send`` that enqueues the task for a message (insert/update/delete) on ``target``'s pod queues."""

    def send(message: Message) -> None:
        actor = _BY_OPERATION[message.route.operation]
        task = dramatiq.Message(
            queue_name=actor.queue_name,
            actor_name=actor.actor_name,
            args=(message.key, message.to_dict()),
            kwargs={},
            options={},
        )
        target.enqueue(task)

    return send


# What the CLI and the cloud bridge hand to ``pods.desired``: the process's own broker, from config.
enqueue = sender(broker)
