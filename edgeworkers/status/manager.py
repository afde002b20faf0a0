"""The status manager (kubelet's ``status_manager.go``): the node's last status of each pod, kept in Redis, and its way
to the cloud through the outbox.

- ``set`` stores the status a sync generated (``status.podstatus``) with the pod's uid and, when it changed, queues it
  for the cloud (a static pod's through its mirror pod); ``confirm_deleted`` queues the confirmation that a pod's
  containers are gone.
- ``get(key, uid)`` is the node's memory of a pod, as kubelet's status manager is: what Docker no longer shows (dead
  containers pruned or collected, a terminal phase) the sync reads here (``pods.remembered``). A status stored for
  another uid (a pod deleted and created again under its name) is not this pod's.
- ``reassert`` and the periodic ``resync`` (kubelet's ``syncBatch``, every 10 s) queue the node's status again for a
  cloud pod whose status at the cloud, as the watch last showed it, differs from it (``status.digest``). The outbox
  already sends every change; this catches what it could not: an item the cloud refused for a passing reason, a status
  someone else wrote at the cloud, a node-lifecycle mark whose watch event arrived before the node had a status to
  answer with. A pod with an item pending in the outbox is left to that item (it may be the pod's deletion
  confirmation, which a status must not replace); so is a pod being deleted, and a static pod (its mirror pod is not
  stored here: ``resend_mirror`` gives a recreated mirror its status).

The bridge and the worker call it; neither knows its keys.
"""
from __future__ import annotations

import json
import threading
from typing import Any

import structlog

from edgeworkers import constants
from edgeworkers.metamanager.client import is_static
from edgeworkers.metamanager.outbox import Outbox, pod_item_key
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.status.digest import status_differs

log = structlog.get_logger(__name__)

RESYNC_INTERVAL_S = 10.0


def status_key(key: str) -> str:
    return f"{constants.KEY_POD_STATUS}:{key}"


def _decode(raw: bytes) -> tuple[str | None, dict[str, Any]]:
    """A stored status and its pod's uid (None: stored by a version that kept no uid)."""
    stored = json.loads(raw)
    if "status" in stored and "uid" in stored:
        return stored["uid"], stored["status"]
    return None, stored


def _identity(pod: dict[str, Any]) -> tuple[str, str, str]:
    meta = pod["metadata"]
    return meta.get("namespace") or "default", meta["name"], meta.get("uid") or ""


class StatusManager:
    def __init__(self, store: MetaStore, outbox: Outbox, resync_interval_s: float = RESYNC_INTERVAL_S) -> None:
        self._store = store
        self._redis = store.redis
        self._outbox = outbox
        self._resync_interval_s = resync_interval_s

    # --- the node's last status ------------------------------------------------------------------

    def get(self, key: str, uid: str | None = None) -> dict[str, Any] | None:
        """Pod ``key``'s last status; with ``uid``, None when it was stored for another pod of that name."""
        raw = self._redis.get(status_key(key))
        if raw is None:
            return None
        stored_uid, status = _decode(raw)
        return None if uid and stored_uid and stored_uid != uid else status

    def set(self, key: str, pod: dict[str, Any] | None, status: dict[str, Any]) -> bool:
        """Store ``status`` as pod ``key``'s; when it differs from the one stored before, queue it for the cloud
        (``pod``: the desired pod, None for one no longer desired). True when it changed."""
        uid = _identity(pod)[2] if pod is not None else None
        encoded = json.dumps({"uid": uid, "status": status}, separators=(",", ":"), sort_keys=True)
        previous = self._redis.set(status_key(key), encoded, get=True)
        before_uid, before = _decode(previous) if previous is not None else (None, None)
        changed = before != status or before_uid not in (None, uid)  # a status of an older version: no uid
        if changed and pod is not None:
            namespace, name, uid = _identity(pod)
            self._outbox.pod_status(namespace, name, uid, status, mirror=is_static(pod))
        return changed

    def forget(self, key: str) -> None:
        self._redis.delete(status_key(key))

    def confirm_deleted(self, pod: dict[str, Any]) -> None:
        """Queue the confirmation that the pod's containers are gone (the cloud then removes the pod)."""
        namespace, name, uid = _identity(pod)
        self._outbox.pod_deleted(namespace, name, uid, mirror=is_static(pod))

    # --- what the cloud shows ----------------------------------------------------------------------

    def reassert(self, cloud_pod: dict[str, Any]) -> bool:
        """Queue the node's last status of ``cloud_pod`` (as a watch event shows it) again when the cloud's differs.
        Never for a pod being deleted, here or at the cloud: its pending deletion confirmation (same outbox key) must
        not be replaced. True when queued."""
        namespace, name, uid = _identity(cloud_pod)
        key = f"{namespace}/{name}"
        local = self.get(key, uid)
        if local is None or cloud_pod["metadata"].get("deletionTimestamp"):
            return False
        if not status_differs(cloud_pod.get("status"), local):
            return False
        stored = self._store.get(POD, namespace, name)
        if stored is None or stored["metadata"].get("deletionTimestamp") or stored["metadata"].get("uid") != uid:
            return False
        self._outbox.pod_status(namespace, name, uid, local, mirror=False)
        log.info("the cloud's pod status differs from the node's; sending the node's again", pod=key)
        return True

    def resend_mirror(self, key: str, static: dict[str, Any]) -> None:
        """Give a static pod's new mirror pod the node's last status (the uplink sent it to the mirror that went)."""
        status = self.get(key)
        if status is not None:
            namespace, name, uid = _identity(static)
            self._outbox.pod_status(namespace, name, uid, status, mirror=True)

    def resync(self) -> list[str]:
        """Queue the node's status of every cloud pod the cloud shows otherwise; return their keys."""
        queued = []
        for pod in self._store.each(POD):
            namespace, name, uid = _identity(pod)
            if is_static(pod) or pod["metadata"].get("deletionTimestamp"):
                continue
            if self._outbox.pending(pod_item_key(namespace, name)):
                continue
            local = self.get(f"{namespace}/{name}", uid)
            if local is None or not status_differs(pod.get("status"), local):
                continue
            self._outbox.pod_status(namespace, name, uid, local, mirror=False)
            queued.append(f"{namespace}/{name}")
        if queued:
            log.info("status resync: the cloud shows other statuses; sending the node's again", pods=queued)
        return queued

    def run_resync(self, stop: threading.Event) -> None:
        """``resync`` every ``resync_interval_s`` until ``stop`` (a bridge loop)."""
        while not stop.wait(self._resync_interval_s):
            self.resync()
