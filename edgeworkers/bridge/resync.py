"""The status manager's periodic resync (kubelet's ``syncBatch``, every 10 s): each cloud pod whose status at the cloud,
as the watch last showed it, differs from the node's last status has the node's status queued again.

The outbox already sends every change; this catches what it could not: an item the cloud refused for a passing
reason, a status someone else wrote at the cloud, a node-lifecycle mark the watch event of which arrived before the
node had a status to answer with. A pod with an item pending in the outbox is left to that item (it may be the pod's
deletion confirmation, which a status must not replace); so is a pod being deleted, and a static pod (its mirror pod
is not stored here: ``MirrorPods`` re-sends its status when it recreates it).
"""
from __future__ import annotations

import threading

import structlog

from edgeworkers.bridge.watcher import status_differs
from edgeworkers.metamanager.client import is_static
from edgeworkers.metamanager.outbox import Outbox, pod_item_key
from edgeworkers.metamanager.store import POD, MetaStore

log = structlog.get_logger(__name__)

RESYNC_INTERVAL_S = 10.0


class StatusResync:
    """One step, ``resync()``; ``run()`` repeats it every ``interval_s`` until stopped."""

    def __init__(self, store: MetaStore, outbox: Outbox, interval_s: float = RESYNC_INTERVAL_S) -> None:
        self._store = store
        self._outbox = outbox
        self._interval_s = interval_s

    def resync(self) -> list[str]:
        """Queue the node's status of every cloud pod the cloud shows otherwise; return their keys."""
        queued = []
        for pod in self._store.each(POD):
            meta = pod["metadata"]
            namespace, name = meta.get("namespace") or "default", meta["name"]
            if is_static(pod) or meta.get("deletionTimestamp") or self._outbox.pending(pod_item_key(namespace, name)):
                continue
            local = self._store.get_pod_status(f"{namespace}/{name}")
            if local is None or not status_differs(pod.get("status"), local):
                continue
            self._outbox.pod_status(namespace, name, meta.get("uid") or "", local, mirror=False)
            queued.append(f"{namespace}/{name}")
        if queued:
            log.info("status resync: the cloud shows other statuses; sending the node's again", pods=queued)
        return queued

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval_s):
            self.resync()
