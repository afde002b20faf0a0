"""Mirror pods: the cloud's read-only view of this node's static pods, kept as kubelet's mirror client keeps them.

A static pod (``edgeworkers pod apply``) lives in MetaManager only; the cloud shows it as a mirror pod of the same
name, bound to this node and annotated ``kubernetes.io/config.mirror=<hash of the static pod>``. The node owns
mirrors: the cloud cannot change them. A mirror that is missing is created (and given the static pod's last status),
one whose hash no longer matches the static pod (changed at the cloud, or the static pod re-applied) or that someone
deleted at the cloud (it then waits with a ``deletionTimestamp`` for the node) is deleted and created anew, and one
whose static pod is gone is deleted. A pod at the cloud holding a static pod's name without the annotation is a
cloud pod: it is never overwritten.

What the cloud holds is learnt from the pod watch (``observe``/``reconcile``), so a round with nothing to do sends
no request.
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from edgeworkers.constants import ANNOTATION_MIRROR, ANNOTATION_SOURCE, SOURCE_FILE
from edgeworkers.kubeclient import ApiClient, ApiError, CloudUnavailable
from edgeworkers.metamanager.client import is_static
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.status.manager import StatusManager

log = structlog.get_logger(__name__)

SYNC_INTERVAL_S = 2.0
# A mirror pod deleted at the cloud is created anew no sooner than this after its deletion was confirmed, as kubelet
# recreates it on a later sync: whoever deleted it sees it gone (`kubectl delete` waits for its name to disappear, and
# a mirror back within milliseconds would leave it waiting for good).
RECREATE_AFTER_S = 2.0
DELETED = "DELETED"


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def pod_path(namespace: str, name: str) -> str:
    return f"{pods_path(namespace)}/{name}"


def final_delete(uid: str | None) -> dict[str, Any]:
    """DeleteOptions of a deletion the node confirms (kubelet's): at once, and only of the pod with ``uid``."""
    options: dict[str, Any] = {"gracePeriodSeconds": 0}
    if uid:
        options["preconditions"] = {"uid": uid}
    return options


def static_pod_hash(static_pod: dict[str, Any]) -> str:
    """The hash a mirror carries: of what makes the static pod what it is (identity, labels, annotations, spec),
    not of what every apply or status changes (resourceVersion, timestamps)."""
    meta = static_pod.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != ANNOTATION_MIRROR}
    essence = {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace") or "default",
            "uid": meta.get("uid"),
            "labels": meta.get("labels") or {},
            "annotations": annotations,
        },
        "spec": static_pod.get("spec") or {},
    }
    return hashlib.sha256(json.dumps(essence, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def mirror_pod(static_pod: dict[str, Any], node_name: str) -> dict[str, Any]:
    """The mirror pod to create for ``static_pod``: its name, labels, annotations and spec, bound to ``node_name``."""
    meta = static_pod["metadata"]
    metadata: dict[str, Any] = {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "default",
        "annotations": {
            **(meta.get("annotations") or {}),
            ANNOTATION_SOURCE: SOURCE_FILE,
            ANNOTATION_MIRROR: static_pod_hash(static_pod),
        },
    }
    if meta.get("labels"):
        metadata["labels"] = dict(meta["labels"])
    spec = copy.deepcopy(static_pod.get("spec") or {})
    spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def is_mirror(pod: dict[str, Any]) -> bool:
    return ANNOTATION_MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})


@dataclass(frozen=True)
class Mirror:
    """What the node knows of one mirror pod at the cloud."""

    uid: str
    hash: str
    deleting: bool

    @classmethod
    def of(cls, pod: dict[str, Any]) -> Mirror:
        meta = pod["metadata"]
        return cls(meta.get("uid") or "", meta["annotations"][ANNOTATION_MIRROR], bool(meta.get("deletionTimestamp")))


def _key(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace') or 'default'}/{meta['name']}"


class MirrorPods:
    """This node's mirror pods. Thread-safe: the watcher observes, ``run`` syncs, the uplink ensures and deletes."""

    def __init__(
        self,
        api: ApiClient,
        store: MetaStore,
        status: StatusManager,
        node_name: str,
        interval_s: float = SYNC_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._store = store
        self._status = status
        self._node_name = node_name
        self._interval_s = interval_s
        self._known: dict[str, Mirror] = {}  # "<namespace>/<name>" -> the mirror at the cloud
        self._lock = threading.RLock()  # one writer of the cloud's mirrors at a time
        self._wake = threading.Event()  # a watch event came: sync now rather than at the next tick
        self._warned: dict[str, str] = {}  # key -> the last problem logged for it, so each is logged once
        self._offline = False
        self._clock = clock
        self._held: dict[str, float] = {}  # key -> when a mirror deleted at the cloud may be created anew

    # --- what the cloud holds, from the pod watch ----------------------------------------------

    def observe(self, event_type: str, pod: dict[str, Any]) -> None:
        """Record one watch event of a pod bound to this node (pods without the mirror annotation are ignored)."""
        if not self._ours(pod):
            return
        with self._lock:
            if event_type == DELETED:
                known = self._known.get(_key(pod))
                if known is not None and known.uid == pod["metadata"].get("uid"):  # not the one that replaced it
                    del self._known[_key(pod)]
            else:
                self._known[_key(pod)] = Mirror.of(pod)
        self._wake.set()

    def reconcile(self, mirror_pods: list[dict[str, Any]]) -> None:
        """Know exactly the mirrors of a fresh list (the watch's list, after a start or a 410 Expired)."""
        with self._lock:
            self._known = {_key(pod): Mirror.of(pod) for pod in mirror_pods if self._ours(pod)}
        self._wake.set()

    def uid_of(self, namespace: str, name: str) -> str | None:
        """The uid of the mirror pod ``namespace/name`` at the cloud, when known."""
        with self._lock:
            mirror = self._known.get(f"{namespace}/{name}")
        return mirror.uid if mirror else None

    def _ours(self, pod: dict[str, Any]) -> bool:
        return is_mirror(pod) and (pod.get("spec") or {}).get("nodeName") == self._node_name

    # --- changing them -------------------------------------------------------------------------

    def ensure(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Create the mirror of stored static pod ``namespace/name`` (or adopt ours already there); None when no such
        static pod is stored or a cloud pod holds its name. Raises CloudUnavailable, ApiError (refused)."""
        key = f"{namespace}/{name}"
        with self._lock:
            static = self._store.get(POD, namespace, name)
            if static is None or not is_static(static) or static["metadata"].get("deletionTimestamp") or self._holding(key):
                return None
            return self._create(key, static)

    def delete(self, namespace: str, name: str) -> None:
        """Delete the mirror pod ``namespace/name`` (its static pod is gone); one already gone or replaced is done.
        Raises CloudUnavailable, ApiError (refused)."""
        key = f"{namespace}/{name}"
        with self._lock:
            self._delete(key, self._known.get(key))

    def sync(self) -> None:
        """One round: every stored static pod (not being deleted) has its own, current mirror; no other mirror is
        left. Never raises for the cloud: unreachable is logged once and the next round tries again."""
        with self._lock:
            try:
                self._sync()
            except CloudUnavailable as exc:
                if not self._offline:
                    log.warning("mirror pods: the cloud is unreachable; trying again", error=str(exc))
                self._offline = True
                return
            if self._offline:
                log.info("mirror pods: the cloud is reachable again")
            self._offline = False

    def run(self, stop: threading.Event) -> None:
        """Sync every ``interval_s``, and soon after each watch event, until ``stop`` is set (seen within one
        interval)."""
        while not stop.is_set():
            self._wake.clear()
            try:
                self.sync()
            except Exception:
                log.exception("mirror pods: sync crashed")
            self._wake.wait(self._interval_s)

    def _sync(self) -> None:
        statics = {_key(pod): pod for pod in self._store.each(POD) if is_static(pod)}
        for key, static in statics.items():
            if static["metadata"].get("deletionTimestamp"):
                continue  # its mirror goes when its containers are gone (the uplink's pod_deleted)
            try:
                self._sync_one(key, static)
            except ApiError as exc:
                self._warn_once(key, "mirror pod refused by the cloud", f"{exc.code} {exc.reason}: {exc.message}")
        for key in [key for key in self._known if key not in statics]:
            try:
                self._delete(key, self._known[key])
                log.info("orphan mirror pod deleted", pod=key)
            except ApiError as exc:
                self._warn_once(key, "orphan mirror pod not deleted", f"{exc.code} {exc.reason}: {exc.message}")

    def _sync_one(self, key: str, static: dict[str, Any]) -> None:
        mirror = self._known.get(key)
        if mirror is not None and not mirror.deleting and mirror.hash == static_pod_hash(static):
            return
        if mirror is not None:
            why = "deleted at the cloud" if mirror.deleting else "out of date"
            log.info("replacing mirror pod", pod=key, why=why)
            self._delete(key, mirror)
            if mirror.deleting:
                self._held[key] = self._clock() + RECREATE_AFTER_S
        if self._holding(key):
            return
        if self._create(key, static) is not None:
            self._status.resend_mirror(key, static)

    def _holding(self, key: str) -> bool:
        """Whether the mirror at ``key`` was deleted at the cloud too recently to be created anew."""
        until = self._held.get(key)
        if until is not None and self._clock() >= until:
            del self._held[key]
            until = None
        return until is not None

    def _create(self, key: str, static: dict[str, Any]) -> dict[str, Any] | None:
        namespace, name = key.split("/", 1)
        try:
            created = self._api.post(pods_path(namespace), mirror_pod(static, self._node_name))
            log.info("mirror pod created", pod=key)
        except ApiError as exc:
            if exc.code != 409:
                raise
            created = self._api.get(pod_path(namespace, name))
            if not self._ours(created):
                self._warn_once(key, "a cloud pod holds the name of a static pod; no mirror pod for it")
                return None
        self._known[key] = Mirror.of(created)
        self._warned.pop(key, None)
        return created

    def _delete(self, key: str, mirror: Mirror | None) -> None:
        """Delete the mirror at ``key``: the one known, else the one the cloud holds there if it is ours (a cloud
        pod of that name is never deleted)."""
        namespace, name = key.split("/", 1)
        try:
            uid = mirror.uid if mirror else self._mirror_uid_at(namespace, name)
            if uid is not None:
                self._api.delete(pod_path(namespace, name), final_delete(uid))
        except ApiError as exc:
            if exc.code not in (404, 409):  # gone already, or replaced: not ours to delete
                raise
        self._known.pop(key, None)

    def _mirror_uid_at(self, namespace: str, name: str) -> str | None:
        pod = self._api.get(pod_path(namespace, name))
        return pod["metadata"].get("uid") if self._ours(pod) else None

    def _warn_once(self, key: str, event: str, error: str = "") -> None:
        if self._warned.get(key) != event + error:
            self._warned[key] = event + error
            log.warning(event, pod=key, **({"error": error} if error else {}))
