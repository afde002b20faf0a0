"""Keeps MetaManager's configmaps and secrets to exactly those the node's pods reference, fresh from the cloud.

kubelet's TTL-cache strategy: the node does not watch every configmap and secret of the cluster, it re-reads the ones
its pods use every ``interval_s``. A newer version is stored and every pod using it is synced (so mounted files and,
on the next restart, environment follow it); one the cloud deleted is deleted here too (its pods sync, and show the
error); one no pod references any more is dropped. While the cloud is unreachable what is stored stays: the node
keeps running its pods with what it has (edge autonomy).

Logs name objects, never their data.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Container
from typing import Any

import structlog

from edgeworkers.k8s.references import Reference, references
from edgeworkers.kubeclient import ApiClient, ApiError, CloudUnavailable
from edgeworkers.messages import Message, Send, resource
from edgeworkers.metamanager.remote import PLURAL, object_path
from edgeworkers.metamanager.store import POD, MetaStore, Put

log = structlog.get_logger(__name__)

REFRESH_INTERVAL_S = 10.0
SOURCE = "bridge"


def _pod_key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata'].get('namespace') or 'default'}/{pod['metadata']['name']}"


class ConfigRefresher:
    """One step, ``refresh()``; ``run()`` repeats it every ``interval_s`` until stopped."""

    def __init__(
        self,
        api: ApiClient,
        store: MetaStore,
        send: Send,
        interval_s: float = REFRESH_INTERVAL_S,
        pods_listed: Callable[[], bool] = lambda: True,
    ) -> None:
        """``pods_listed``: whether MetaManager's pods are the cloud's (the pod watcher listed once). Until then nothing
        is dropped: a pod created while the bridge was down may use an object no stored pod references yet."""
        self._api = api
        self._store = store
        self._send = send
        self._interval_s = interval_s
        self._pods_listed = pods_listed
        self._offline = False
        self._refused: dict[Reference, int] = {}  # the cloud's last refusal of each object, so it is logged once

    def refresh(self) -> list[str]:
        """One round; return the objects it changed in MetaManager (``"<namespace>/<kind>/<name>"``), sorted.
        Never raises for the cloud: unreachable is logged once, and what is stored stays."""
        used_by: dict[Reference, list[dict[str, Any]]] = {}
        for pod in self._store.each(POD):
            for ref in references(pod):
                used_by.setdefault(ref, []).append(pod)
        changed = self._drop_unreferenced(used_by.keys()) if self._pods_listed() else []
        stored = {kind: self._store.keys(kind) for kind in PLURAL}
        to_sync: dict[str, dict[str, Any]] = {}
        try:
            for ref in sorted(used_by):
                kind, namespace, name = ref
                if self._refresh_one(ref, f"{namespace}/{name}" in stored[kind]):
                    changed.append(resource(namespace, kind, name))
                    to_sync.update((_pod_key(pod), pod) for pod in used_by[ref]
                                   if not pod["metadata"].get("deletionTimestamp"))  # a pod going needs no sync
        except CloudUnavailable as exc:
            if not self._offline:
                log.warning("configs: the cloud is unreachable; keeping the stored configmaps and secrets",
                            error=str(exc))
            self._offline = True
        else:
            if self._offline:
                log.info("configs: the cloud is reachable again")
            self._offline = False
        for pod in to_sync.values():
            self._send(Message.for_object(POD, pod, "update", SOURCE))
        return sorted(changed)

    def run(self, stop: threading.Event) -> None:
        """Refresh every ``interval_s`` until ``stop`` is set; a failed round is logged, never raised."""
        while not stop.is_set():
            try:
                self.refresh()
            except Exception:
                log.exception("configs: refresh crashed")
            stop.wait(self._interval_s)

    def _refresh_one(self, ref: Reference, is_stored: bool) -> bool:
        """Bring one referenced object up to the cloud's; True when MetaManager changed."""
        kind, namespace, name = ref
        try:
            obj = self._api.get(object_path(kind, namespace, name))
        except ApiError as exc:
            if exc.code == 404:
                self._refused.pop(ref, None)
                if not is_stored:
                    return False
                self._store.delete(kind, namespace, name)  # its tombstone stops a late copy coming back
                log.info("configs: deleted at the cloud", kind=kind, namespace=namespace, name=name)
                return True
            if self._refused.get(ref) != exc.code:
                self._refused[ref] = exc.code
                log.warning("configs: the cloud refused a read; keeping the stored copy", kind=kind,
                            namespace=namespace, name=name, code=exc.code, reason=exc.reason)
            return False
        self._refused.pop(ref, None)
        if self._store.put(kind, obj) is not Put.STORED:
            return False
        log.info("configs: updated", kind=kind, namespace=namespace, name=name,
                 resource_version=obj["metadata"].get("resourceVersion"))
        return True

    def _drop_unreferenced(self, referenced: Container[Reference]) -> list[str]:
        """Remove the stored configmaps and secrets no pod references. No tombstone is left: the object was not
        deleted, and a pod referencing it again must be able to store the same version."""
        dropped = []
        for kind in PLURAL:
            for member in self._store.keys(kind):
                namespace, name = member.split("/", 1)
                if (kind, namespace, name) in referenced:
                    continue
                self._store.delete(kind, namespace, name, tombstone=False)
                dropped.append(resource(namespace, kind, name))
                log.info("configs: no pod references it; dropped", kind=kind, namespace=namespace, name=name)
        return dropped
