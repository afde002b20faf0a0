"""The pod watcher: the cloud's pods bound to this node, into MetaManager and the pod queues (kubelet's reflector).

LIST the node's pods (``fieldSelector=spec.nodeName=<node>``, paged), reconcile MetaManager to them, then WATCH from
the list's resourceVersion, resuming from the last one seen (bookmarks move it) each time the server ends the watch.
A 410 Expired relists at once; a connection failure reconnects with back-off and relists, so nothing that happened
meanwhile is missed.

What reaches the workers is what changes what runs: a pod's spec, labels, annotations, identity or deletion. A
status-only change (the echo of the node's own status patches) sends no task, and a pod unchanged after hours away
is left alone (no restart). When the cloud's status of a pod disagrees with the node's (its node lifecycle controller
marked it NotReady while the node was away), the node's own status is queued again for the uplink.

A complete list establishes MetaManager's epoch (``metamanager.epoch``). ``run_epoch_check`` looks for it every
``EPOCH_CHECK_S``: gone, the agent's Redis lost its data, and the pods are listed again at once (beside a watch blocked
in its read: a lock keeps the list and the handling of events apart). Pods that run stay untouched: each comes back into
MetaManager as it is, and its sync finds its containers as they should be.
"""
from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import structlog

from edgeworkers import metrics
from edgeworkers.bridge.mirror import is_mirror
from edgeworkers.bridge.uplink import backoff_delay
from edgeworkers.constants import ANNOTATION_SOURCE, SOURCE_API
from edgeworkers.k8s.status import APIError
from edgeworkers.kubeclient import ApiError, CloudUnavailable, WatchExpired
from edgeworkers.messages import Message, Operation, Send
from edgeworkers.metamanager.client import is_static
from edgeworkers.metamanager.epoch import Epoch
from edgeworkers.metamanager.store import POD, MetaStore, Put, StoreError, version_number
from edgeworkers.pods import deletion
from edgeworkers.status.manager import StatusManager

log = structlog.get_logger(__name__)

PODS = "/api/v1/pods"
SOURCE = "bridge"
ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
# Each watch asks the server to end it after 5 to 10 minutes (kubelet's reflector), so the nodes of a region do not
# all reconnect together.
WATCH_TIMEOUT_MIN_S = 300
# A watch that ends this soon without a single event is a failure (backed off), not a normal end.
SHORT_WATCH_S = 1.0
# The back-off starts again from its shortest delay once the watcher has gone this long without a failure.
BACKOFF_RESET_S = 120.0
# Dropped objects are logged once each; the memory of which were logged is bounded.
DROPPED_MEMORY = 1024
# The metadata whose change reaches the workers (besides the spec); the rest is the cloud's bookkeeping.
SPEC_METADATA = ("uid", "labels", "annotations", "deletionTimestamp", "deletionGracePeriodSeconds")
# How often the watcher looks for MetaManager's epoch (a Redis that lost its data has none).
EPOCH_CHECK_S = 2.0


class ListWatch(Protocol):
    """What the watcher needs of the cloud (``kubeclient.ApiClient``)."""

    def list(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]: ...

    def watch(
        self, path: str, params: dict[str, str] | None = None, timeout_s: int = ...
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...


class MirrorSink(Protocol):
    """Where mirror pods seen in the watch go (``bridge.mirror.MirrorPods``)."""

    def observe(self, event_type: str, pod: dict[str, Any]) -> None: ...

    def reconcile(self, mirror_pods: list[dict[str, Any]]) -> None: ...


class Action(enum.Enum):
    """What to do with one watch event (or one listed pod)."""

    APPLY = "apply"  # a pod of this node, added or modified
    DELETE = "delete"  # a pod of this node, gone from the cloud
    MIRROR = "mirror"  # the cloud's view of one of the node's static pods: for MirrorPods
    BOOKMARK = "bookmark"  # only a newer resourceVersion
    OTHER_NODE = "bound to another node"
    NAMELESS = "without a name or namespace"
    MALFORMED = "not a pod event"


def classify(event_type: str, obj: Any, node_name: str) -> Action:
    """The action for one event; anything not a named pod of this node is dropped (a real API server honours the
    field selector, but a bug or a proxy must not make the node run another node's pods)."""
    if event_type == BOOKMARK:
        return Action.BOOKMARK
    if event_type not in (ADDED, MODIFIED, DELETED) or not isinstance(obj, dict) or obj.get("kind", "Pod") != "Pod":
        return Action.MALFORMED
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("namespace"):
        return Action.NAMELESS
    if (obj.get("spec") or {}).get("nodeName") != node_name:
        return Action.OTHER_NODE
    if is_mirror(obj):
        return Action.MIRROR
    return Action.DELETE if event_type == DELETED else Action.APPLY


def spec_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether the workers must look at ``new``: anything but status, resourceVersion and managedFields changed."""
    if old is None:
        return True
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return old.get("spec") != new.get("spec") or any(old_meta.get(f) != new_meta.get(f) for f in SPEC_METADATA)


def operation(old: dict[str, Any] | None, new: dict[str, Any]) -> Operation:
    """The message's operation: a deletion, a change of the pod the node runs, or a new pod (a new uid too)."""
    if new["metadata"].get("deletionTimestamp"):
        return "delete"
    old_meta = (old or {}).get("metadata") or {}
    if old is None or old_meta.get("deletionTimestamp") or old_meta.get("uid") != new["metadata"].get("uid"):
        return "insert"
    return "update"


def _key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _deleting(pod: dict[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


class _ShortWatch(Exception):
    """The server ended a watch at once, with no event: treated as a failure, so it is not retried in a loop."""


class PodWatcher:
    """One public step, ``step()`` (a list when due, else one watch); ``run()`` repeats it until stopped."""

    def __init__(
        self,
        api: ListWatch,
        store: MetaStore,
        send: Send,
        node_name: str,
        mirrors: MirrorSink,
        status: StatusManager,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        epoch: Epoch | None = None,
    ) -> None:
        self._api = api
        self._epoch = epoch
        self._lock = threading.Lock()  # a list (of the watcher or of the epoch check) and an event: one at a time
        self._store = store
        self._send = send
        self._node_name = node_name
        self._mirrors = mirrors
        self._status = status
        self._clock = clock
        self._jitter = jitter
        self._params = {"fieldSelector": f"spec.nodeName={node_name}"}
        self.resource_version: str | None = None  # where the next watch starts; None: list first
        self._failures = 0  # for the back-off: failures since the last quiet spell of BACKOFF_RESET_S
        self._last_failure: float | None = None
        self._failing = False  # for the logs: the last step failed
        self._dropped: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self.listed = threading.Event()  # set once MetaManager's pods are the cloud's (the first list)

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, waiting between steps as ``step`` says. To stop a watch blocked in its read,
        close the API client too."""
        self._stop = stop
        while not stop.is_set():
            delay = self.step()
            if delay:
                stop.wait(delay)

    def step(self) -> float:
        """List (at the start, after a failure or a 410) or watch once; return the seconds to wait before the next
        step: 0, or a back-off after a failure. Never raises."""
        try:
            if self.resource_version is None:
                with self._lock:
                    self._list()
            else:
                self._watch()
        except WatchExpired as exc:
            log.info("pod watch expired; listing again", error=exc.message)
            self.resource_version = None
            return 0.0
        except _ShortWatch:
            return self._failed("the pod watch ended at once", None)
        except (CloudUnavailable, ApiError, StoreError) as exc:
            self.resource_version = None
            return self._failed("pod list/watch failed", exc)
        except Exception as exc:  # a bug must not end the watcher: log it, back off, list again
            log.exception("pod list/watch crashed")
            self.resource_version = None
            return self._failed("pod list/watch crashed", exc, logged=True)
        if self._failing:
            log.info("pod list/watch works again")
            self._failing = False
        return 0.0

    def _failed(self, what: str, exc: Exception | None, logged: bool = False) -> float:
        if self._stop.is_set():  # the client was closed to stop us
            return 0.0
        now = self._clock()
        if self._last_failure is None or now - self._last_failure >= BACKOFF_RESET_S:
            self._failures = 0
        self._failures += 1
        self._last_failure = now
        delay = backoff_delay(self._failures, self._jitter())
        if not logged:
            level = log.info if self._failing else log.warning
            level(what, error=str(exc) if exc else None, failures=self._failures, retry_in_s=round(delay, 2))
        self._failing = True
        return delay

    # --- list and watch ------------------------------------------------------------------------

    def run_epoch_check(self, stop: threading.Event) -> None:
        """``check_epoch`` every ``EPOCH_CHECK_S`` until ``stop`` is set; a failure is logged, never raised."""
        while not stop.wait(EPOCH_CHECK_S):
            try:
                self.check_epoch()
            except (CloudUnavailable, ApiError, StoreError) as exc:
                log.warning("pods not listed again after the agent's Redis lost its data; trying again",
                            error=str(exc), retry_in_s=EPOCH_CHECK_S)

    def check_epoch(self) -> bool:
        """List the pods again if MetaManager's epoch is gone since the last list (its Redis lost its data); True then.
        Raises what the list raises."""
        if self._epoch is None or not self.listed.is_set() or self._epoch.current() is not None:
            return False
        with self._lock:
            if self._epoch.current() is None:  # else the watcher listed meanwhile
                self._list()
        return True

    def _list(self) -> None:
        """Make MetaManager hold exactly the listed pods of the API source: put each (unchanged ones stay as they
        are), delete those the cloud no longer has (deleted while the node was away). Then establish the epoch."""
        if self._epoch is not None and self._epoch.current() is None and (
            self.listed.is_set() or self._epoch.recorded() is not None
        ):
            metrics.REDIS_DATA_LOSSES.inc()
            log.warning("the agent's Redis lost its data (MetaManager's epoch is gone): listing the node's pods again "
                        "from the cloud; orphan cleanup waits for that list", recorded_epoch=self._epoch.recorded())
        result = self._api.list(PODS, self._params)
        version = str((result.get("metadata") or {}).get("resourceVersion") or "")
        listed: dict[str, str | None] = {}
        mirrors = []
        for item in result.get("items") or []:
            action = classify(ADDED, item, self._node_name)
            if action is Action.MIRROR:
                mirrors.append(item)
            elif action is Action.APPLY:
                listed[_key(item)] = item["metadata"].get("uid")
                self._apply(item)
            else:
                self._drop(action, ADDED, item)
        for stored in self._store.each(POD):
            meta = stored["metadata"]
            if (meta.get("annotations") or {}).get(ANNOTATION_SOURCE) != SOURCE_API or _deleting(stored):
                continue
            if listed.get(_key(stored), "") != meta.get("uid"):
                self._delete(stored, version, None)
        self._mirrors.reconcile(mirrors)
        if self._epoch is not None:
            self._epoch.establish()
        self.resource_version = version or None
        self.listed.set()
        log.info("pods listed", pods=len(listed), mirror_pods=len(mirrors), resource_version=version)

    def _watch(self) -> None:
        timeout_s = int(WATCH_TIMEOUT_MIN_S * (1 + self._jitter()))
        started, received = self._clock(), 0
        events = self._api.watch(PODS, {**self._params, "resourceVersion": self.resource_version or ""}, timeout_s)
        try:
            for event_type, obj in events:
                received += 1
                with self._lock:
                    self._handle(event_type, obj)
                if self._stop.is_set():
                    return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        if not received and self._clock() - started < SHORT_WATCH_S:
            raise _ShortWatch

    def _handle(self, event_type: str, obj: Any) -> None:
        action = classify(event_type, obj, self._node_name)
        if action is Action.APPLY:
            self._apply(obj)
        elif action is Action.DELETE:
            self._deleted(obj)
        elif action is Action.MIRROR:
            self._mirrors.observe(event_type, obj)
        elif action is not Action.BOOKMARK:
            self._drop(action, event_type, obj)
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("resourceVersion"), str) and meta["resourceVersion"]:
            self.resource_version = meta["resourceVersion"]

    # --- one pod -------------------------------------------------------------------------------

    def _apply(self, pod: dict[str, Any]) -> None:
        """Store an added or modified pod; queue a task when what runs must change; re-assert the node's status
        when the cloud shows another."""
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        stored = self._store.get(POD, namespace, name)
        if stored is not None and is_static(stored):
            self._drop_once(_key(pod), "a cloud pod has the name of a static pod: refused")
            return
        pod = {
            "apiVersion": "v1", "kind": "Pod", **pod,
            "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}), ANNOTATION_SOURCE: SOURCE_API}},
        }
        outcome = self._store.put(POD, pod)
        if outcome is Put.STALE:
            return
        if outcome is Put.STORED and spec_changed(stored, pod):
            op = operation(stored, pod)
            self._send(Message.for_object(POD, pod, op, SOURCE))
            log.info("pod queued", pod=_key(pod), operation=op, resource_version=meta.get("resourceVersion"))
        self._status.reassert(pod)

    def _deleted(self, pod: dict[str, Any]) -> None:
        """A pod gone from the cloud: stop it when still running here (force-deleted at the cloud), else only
        leave a tombstone so a late event cannot bring it back."""
        meta = pod["metadata"]
        stored = self._store.get(POD, meta["namespace"], meta["name"])
        if stored is None:
            self._store.delete(POD, meta["namespace"], meta["name"], deleted_version=meta.get("resourceVersion"))
        elif is_static(stored):
            self._drop_once(_key(pod), "a cloud pod has the name of a static pod: refused")
        elif stored["metadata"].get("uid") == meta.get("uid") and not _deleting(stored):
            self._delete(stored, meta.get("resourceVersion"), meta.get("deletionGracePeriodSeconds"))

    def _delete(self, stored: dict[str, Any], version: str | None, grace_period_s: int | None) -> None:
        """Mark ``stored`` deleted (at ``version``, the cloud's deletion, never older than the stored copy) and
        queue its delete; the worker stops its containers and confirms."""
        key = _key(stored)
        current = version_number(stored) or 0
        try:
            number = max(int(version or 0), current)
        except ValueError:
            number = current + 1
        try:
            deletion.delete_pod(self._store, self._send, key, grace_period_s, SOURCE, resource_version=str(number))
        except APIError as exc:  # removed or changed meanwhile: the next event or list decides
            log.info("pod not marked deleted", pod=key, error=str(exc))
            return
        log.info("pod deleted at the cloud; stopping it", pod=key)

    # --- dropped events ------------------------------------------------------------------------

    def _drop(self, action: Action, event_type: str, obj: Any) -> None:
        meta = (obj.get("metadata") if isinstance(obj, dict) else None) or {}
        name = f"{meta.get('namespace')}/{meta.get('name')}" if isinstance(meta, dict) else "?"
        what = f"pod {action.value}" if action is not Action.MALFORMED else f"{event_type} event {action.value}"
        self._drop_once(name if action is not Action.MALFORMED else event_type, f"{what}: dropped")

    def _drop_once(self, name: str, why: str) -> None:
        if (name, why) in self._dropped:
            return
        if len(self._dropped) >= DROPPED_MEMORY:
            self._dropped.clear()
        self._dropped.add((name, why))
        log.warning(why, pod=name, node=self._node_name)
