"""What every pod task does, in one place: lock the pod, read its DESIRED state, let PodSyncer reconcile Docker,
store the status and queue it for the cloud, schedule the follow-up sync.

Each task carries only the pod's key and the message that caused it; the worker never acts on the message's
copy of the pod. So a task retried, duplicated or overtaken by a later one does no harm: whichever runs last
sees the last desired state. One pod's tasks never overlap (``pods.lock``), but the images a sync needs are pulled
before its lock is taken (``pods.images``): a long pull on a poor link never keeps a delete of the pod waiting. The
actors (and the scheduler's jobs) are thin callers of this module.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis

from edgeworkers import constants, tasks
from edgeworkers.config import Settings
from edgeworkers.events import EventRecorder
from edgeworkers.k8s.status import APIError
from edgeworkers.metamanager.client import MetaClient
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.backoff import RedisBackoffStore
from edgeworkers.pods.desired import decode_pod
from edgeworkers.pods.images import Pulled
from edgeworkers.pods.lock import PodBusy, pod_lock
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime.docker import DockerRuntime, log_rotation
from edgeworkers.runtime.errors import ContainerRuntimeError

log = logging.getLogger(__name__)

# A pending follow-up sync is remembered this much longer than its delay (so a late one is not doubled).
PENDING_SLACK_MS = 30_000


class InvalidPod(Exception):
    """The desired pod fails validation: no retry can fix it (the task is dead-lettered; its status says why)."""


@dataclass(frozen=True)
class Agent:
    """What a worker needs: Redis, the MetaManager store and client, the syncer, the broker for follow-ups."""

    redis: redis.Redis
    store: MetaStore
    meta: MetaClient
    syncer: PodSyncer
    broker: dramatiq.Broker | None
    settings: Settings


def build_agent(config: Settings, broker: dramatiq.Broker | None) -> Agent:
    """The agent of a worker process, from its settings."""
    from edgeworkers.metamanager.crypto import node_cipher
    from edgeworkers.metamanager.remote import CloudRemote

    client = redis_client(
        config, socket_timeout=config.redis_socket_timeout_s, socket_connect_timeout=config.redis_socket_timeout_s
    )
    runtime = DockerRuntime(config.node_name, docker_host=config.docker_host, sandbox_image=config.sandbox_image,
                            **log_rotation(config))
    store = MetaStore(client, node_cipher(config.data_dir))
    meta = MetaClient(store, Outbox(client), CloudRemote(config))
    syncer = PodSyncer(
        runtime, RedisBackoffStore(client), config, meta=meta, probe_results=lambda ids: probe_results(client, ids),
        events=EventRecorder(client, config.node_name), image_locks=client,
    )
    return Agent(client, store, meta, syncer, broker, config)


def probe_results(client: redis.Redis, container_ids: list[str]) -> dict[str, dict[str, bool]]:
    """The prober's published results (``constants.KEY_PROBE``) of these containers, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for ident in container_ids:
        pipe.hgetall(f"{constants.KEY_PROBE}:{ident}")
    return {
        ident: {field.decode(): value == b"1" for field, value in found.items()}
        for ident, found in zip(container_ids, pipe.execute())
        if found
    }


def reconcile(agent: Agent, key: str) -> float | None:
    """Sync pod ``key`` to its desired state under its lock; return the delay of the follow-up sync, if any.

    A changed status is queued for the cloud. A pod marked deleted leaves the desired state once its containers are
    gone, and its deletion is then confirmed to the cloud.
    """
    namespace, name = key.split("/", 1)
    pulled = _prefetch_images(agent, key)
    with pod_lock(agent.redis, key, lease_s=agent.settings.pod_lock_lease_s):
        desired = agent.store.get(POD, namespace, name)
        deleting = bool(desired and desired["metadata"].get("deletionTimestamp"))
        pod = None
        if desired is not None:
            try:
                pod = decode_pod(desired)
            except APIError as error:
                if not deleting:  # an invalid pod being deleted: just kill it
                    log.warning("pod %s is invalid and will not be run: %s", key, error)
                    _put_status(agent, key, desired, {"phase": "Failed", "reason": "Invalid", "message": str(error)})
                    raise InvalidPod(f"pod {key} is invalid: {error}") from error
        result = agent.syncer.sync(key, pod, agent.store.get_pod_status(key), pulled=pulled)
        if result.status is not None:
            _put_status(agent, key, desired, result.status)
            return result.requeue_after
        agent.store.delete_pod_status(key)
        # Unless the pod was applied anew meanwhile (another resourceVersion):
        version = desired["metadata"].get("resourceVersion") if desired else None
        if deleting and agent.store.delete(POD, namespace, name, resource_version=version):
            agent.meta.confirm_deleted(desired)
    return result.requeue_after


def _prefetch_images(agent: Agent, key: str) -> dict[str, Pulled]:
    """Pull, before the pod's lock, the images its sync is about to need (from the desired pod as it is now: the
    sync under the lock reads it again, and pulls whatever this did not foresee)."""
    namespace, name = key.split("/", 1)
    desired = agent.store.get(POD, namespace, name)
    if desired is None or desired["metadata"].get("deletionTimestamp"):
        return {}
    try:
        pod = decode_pod(desired)
    except APIError:  # the sync under the lock reports it
        return {}
    try:
        return agent.syncer.prefetch_images(key, pod)
    except ContainerRuntimeError as exc:  # the engine refused a look at the images: the sync under the lock will see
        log.info("pod %s: images not pulled before its lock: %s", key, exc)
        return {}


def _put_status(agent: Agent, key: str, desired: dict[str, Any] | None, status: dict[str, Any]) -> None:
    if agent.store.put_pod_status(key, status) and desired is not None:
        agent.meta.send_pod_status(desired, status)


def remove_orphans(agent: Agent) -> list[str]:
    """Remove the containers of pods absent from the desired state; return their keys.

    Each pod is killed under its lock after checking again that it is not desired, so a pod added between
    reading the desired keys and listing Docker is left alone (as is a pod being synced right now).
    """
    removed = []
    for key in agent.syncer.orphans(agent.store.keys(POD)):
        namespace, name = key.split("/", 1)
        try:
            with pod_lock(agent.redis, key, lease_s=agent.settings.pod_lock_lease_s):
                if agent.store.get(POD, namespace, name) is None and agent.syncer.kill_pod(
                    key, agent.settings.default_grace_period_s
                ):
                    removed.append(key)
        except PodBusy:
            log.info("pod %s is being synced: not an orphan now", key)
    if removed:
        log.info("removed the containers of %d orphaned pod(s): %s", len(removed), ", ".join(removed))
    return removed


def schedule_sync(agent: Agent, key: str, message: dict[str, Any], delay_s: float) -> bool:
    """Enqueue ``sync_pod`` after ``delay_s`` unless one is already due as soon; True when enqueued.

    Without this, every add/update would start its own chain of follow-up syncs. The pending marker is written only
    once the task is enqueued: when the enqueue fails (Redis away), no marker claims a sync that does not exist, the
    error reaches the task, and its retry schedules the follow-up again.
    """
    delay_ms = max(0, int(delay_s * 1000))
    pending = f"{constants.KEY_SYNC_PENDING}:{key}"
    remaining_ms = agent.redis.pttl(pending) - PENDING_SLACK_MS
    if remaining_ms > 0 and remaining_ms <= delay_ms + 1000:
        return False
    if agent.broker is not None:
        tasks.send_sync(agent.broker, key, message, delay_ms)
    agent.redis.set(pending, 1, px=delay_ms + PENDING_SLACK_MS)
    return True


def run_task(agent: Agent, key: str, message: dict[str, Any], follow_up: bool = False) -> None:
    """One pod task: reconcile ``key`` and schedule its follow-up sync. ``follow_up``: this is the pod's scheduled
    sync, so the next one may be scheduled."""
    log.debug("sync of pod %s for message %s", key, message.get("header", {}).get("msg_id"))
    if follow_up:
        agent.redis.delete(f"{constants.KEY_SYNC_PENDING}:{key}")
    requeue_after = reconcile(agent, key)
    if requeue_after is not None:
        schedule_sync(agent, key, message, requeue_after)
