"""What every pod task does, in one place: lock the pod, read its DESIRED state, let PodSyncer reconcile Docker,
store the status and queue it for the cloud, schedule the follow-up sync.

Each task carries only the pod's key and the header and route of the message that caused it (``tasks.task``): the
worker reads the pod from the desired state, once per task. So a task retried, duplicated or overtaken by a later one does no harm: whichever runs last
sees the last desired state. One pod's tasks never overlap (``pods.lock``), but the images a sync needs are pulled
before its lock is taken (``pods.images``): a long pull on a poor link never keeps a delete of the pod waiting. The
actors (and the scheduler's jobs) are thin callers of this module; ``wiring`` builds its ``PodWorkers``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis

from edgeworkers import constants, tasks
from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.status import APIError
from edgeworkers.metamanager.epoch import Epoch
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.desired import decode_pod
from edgeworkers.pods.images import Pulled
from edgeworkers.pods.lock import PodBusy, pod_lock
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.status.manager import StatusManager

log = logging.getLogger(__name__)

# A pending follow-up sync is remembered this much longer than its delay (so a late one is not doubled).
PENDING_SLACK_MS = 30_000


class InvalidPod(Exception):
    """The desired pod fails validation: no retry can fix it (the task is dead-lettered; its status says why)."""


@dataclass(frozen=True)
class PodWorkers:
    """What the pod tasks need (kubelet's pod workers): Redis for the locks and pending syncs, the desired pods, the
    status manager, the syncer, and the broker for follow-up syncs (None: none are scheduled)."""

    redis: redis.Redis
    store: MetaStore
    status: StatusManager
    syncer: PodSyncer
    broker: dramatiq.Broker | None
    settings: Settings

    @property
    def epoch(self) -> Epoch:
        """MetaManager's epoch: a pod absent from it is killed only while an epoch stands (``metamanager.epoch``)."""
        return Epoch(self.redis)


def reconcile(workers: PodWorkers, key: str) -> float | None:
    """Sync pod ``key`` to its desired state under its lock; return the delay of the follow-up sync, if any.

    A changed status is queued for the cloud. A pod marked deleted leaves the desired state once its containers are
    gone, and its deletion is then confirmed to the cloud.
    """
    namespace, name = key.split("/", 1)
    decoded, pulled = _prefetch_images(workers, key)
    with pod_lock(workers.redis, key, lease_s=workers.settings.pod_lock_lease_s):
        desired = workers.store.get(POD, namespace, name)
        if desired is None:
            desired, known = workers.epoch.known(lambda: workers.store.get(POD, namespace, name))
            if desired is None and not known:
                log.info("pod %s is not in MetaManager, which the bridge has not filled since the agent's Redis lost its "
                         "data: left as it is until it has", key)  # fmt: skip
                return None
        deleting = bool(desired and desired["metadata"].get("deletionTimestamp"))
        pod = None
        if desired is not None:
            try:
                pod = decoded.get(_version(desired)) or decode_pod(desired)
            except APIError as error:
                if not deleting:  # an invalid pod being deleted: just kill it
                    log.warning("pod %s is invalid and will not be run: %s", key, error)
                    workers.status.set(key, desired, {"phase": "Failed", "reason": "Invalid", "message": str(error)})
                    raise InvalidPod(f"pod {key} is invalid: {error}") from error
        uid = desired["metadata"].get("uid") if desired else None
        result = workers.syncer.sync(key, pod, workers.status.get(key, uid), pulled=pulled)
        if result.status is not None:
            workers.status.set(key, desired, result.status)
            return result.requeue_after
        if not result.gone:  # a container or mount remains: the pod stays, unconfirmed, and is looked at again
            log.info("pod %s: not every container and mount of it is gone yet; looking again", key)
            return result.requeue_after
        workers.status.forget(key)
        # Unless the pod was applied anew meanwhile (another resourceVersion):
        version = desired["metadata"].get("resourceVersion") if desired else None
        if deleting and workers.store.delete(POD, namespace, name, resource_version=version):
            workers.status.confirm_deleted(desired)
    return result.requeue_after


def _version(pod: dict[str, Any]) -> tuple[str | None, str | None]:
    meta = pod["metadata"]
    return meta.get("uid"), meta.get("resourceVersion")


def _prefetch_images(workers: PodWorkers, key: str) -> tuple[dict[tuple, Pod], dict[str, Pulled]]:
    """Pull, before the pod's lock, the images its sync is about to need (from the desired pod as it is now: the
    sync under the lock reads it again, and pulls whatever this did not foresee). Returns the pod decoded here by its
    (uid, resourceVersion), which the sync reuses when the lock finds the same version: one decode per task."""
    namespace, name = key.split("/", 1)
    desired = workers.store.get(POD, namespace, name)
    if desired is None or desired["metadata"].get("deletionTimestamp"):
        return {}, {}
    try:
        pod = decode_pod(desired)
    except APIError:  # the sync under the lock reports it
        return {}, {}
    decoded = {_version(desired): pod}
    try:
        return decoded, workers.syncer.prefetch_images(key, pod, workers.status.get(key, pod.metadata.uid))
    except ContainerRuntimeError as exc:  # the engine refused a look at the images: the sync under the lock will see
        log.info("pod %s: images not pulled before its lock: %s", key, exc)
        return decoded, {}


def remove_orphans(workers: PodWorkers) -> list[str]:
    """Remove the containers of pods absent from the desired state; return their keys.

    Each pod is killed under its lock after checking again that it is not desired, so a pod added between
    reading the desired keys and listing Docker is left alone (as is a pod being synced right now). Nothing is killed
    while MetaManager has no epoch (its Redis lost its data; the bridge lists the node's pods again): an absence counts
    only when one epoch stood around the read (``metamanager.epoch``).
    """
    if workers.epoch.current() is None:
        log.info("orphan cleanup waits: the bridge has not listed the node's pods since the agent's Redis began "
                 "(or lost its data)")  # fmt: skip
        return []
    removed = []
    for key in workers.syncer.orphans(workers.store.keys(POD)):
        namespace, name = key.split("/", 1)
        try:
            with pod_lock(workers.redis, key, lease_s=workers.settings.pod_lock_lease_s):
                absent, known = workers.epoch.known(lambda: workers.store.get(POD, namespace, name) is None)
                if absent and known and workers.syncer.kill_pod(key, workers.settings.default_grace_period_s):
                    removed.append(key)
        except PodBusy:
            log.info("pod %s is being synced: not an orphan now", key)
    if removed:
        log.info("removed the containers of %d orphaned pod(s): %s", len(removed), ", ".join(removed))
    return removed


def schedule_sync(workers: PodWorkers, key: str, message: dict[str, Any], delay_s: float) -> bool:
    """Enqueue ``sync_pod`` after ``delay_s`` unless one is already due as soon; True when enqueued.

    Without this, every add/update would start its own chain of follow-up syncs. The pending marker is written only
    once the task is enqueued: when the enqueue fails (Redis away), no marker claims a sync that does not exist, the
    error reaches the task, and its retry schedules the follow-up again.
    """
    delay_ms = max(0, int(delay_s * 1000))
    pending = f"{constants.KEY_SYNC_PENDING}:{key}"
    remaining_ms = workers.redis.pttl(pending) - PENDING_SLACK_MS
    if remaining_ms > 0 and remaining_ms <= delay_ms + 1000:
        return False
    if workers.broker is not None:
        tasks.send_sync(workers.broker, key, message, delay_ms)
    workers.redis.set(pending, 1, px=delay_ms + PENDING_SLACK_MS)
    return True


def run_task(workers: PodWorkers, key: str, message: dict[str, Any], follow_up: bool = False) -> None:
    """One pod task: reconcile ``key`` and schedule its follow-up sync. ``follow_up``: this is the pod's scheduled
    sync, so the next one may be scheduled."""
    log.debug("sync of pod %s for message %s", key, message.get("header", {}).get("msg_id"))
    if follow_up:
        workers.redis.delete(f"{constants.KEY_SYNC_PENDING}:{key}")
    requeue_after = reconcile(workers, key)
    if requeue_after is not None:
        schedule_sync(workers, key, message, requeue_after)
