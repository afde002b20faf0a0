"""Registers this node with the cloud API and keeps it alive, as kubelet does.

Once: create the Node (or, when it already exists, refresh its labels); every ``interval_s`` (10 s,
kubelet's nodeStatusUpdateFrequency): patch ``nodes/<name>/status`` and renew the node's Lease in
``kube-node-lease``. A condition that changes (or is first reported) is also recorded as an Event, as
kubelet does (``NodeReady``, ``NodeHasSufficientMemory`` ...). The cloud may be down at any time: a failed round is logged and the next one
tries again, so the loop never dies.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from edgeworkers.k8s.event import node_event
from edgeworkers.k8s.timefmt import micro_time
from edgeworkers.kubeclient import ApiClient, ApiError, CloudUnavailable
from edgeworkers.node.status import NodeFacts, condition_events, node_object

log = structlog.get_logger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
HEARTBEAT_INTERVAL_S = 10.0  # the default of Settings.node_status_update_frequency_s
# After a failed heartbeat, try again sooner: from this delay, doubling up to the heartbeat interval
# (kubelet's node registration backs off the same way), so a node whose cloud just came up registers at once.
RETRY_INITIAL_S = 0.2


def retry_delay(failures: int, interval_s: float) -> float:
    """Seconds before the next heartbeat after ``failures`` consecutive failures (0: the plain interval)."""
    if failures == 0:
        return interval_s
    return min(RETRY_INITIAL_S * 2 ** (failures - 1), interval_s)
NODES = "/api/v1/nodes"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
EVENTS = "/api/v1/namespaces/default/events"


def condition_event(node_name: str, reason: str, now: datetime) -> dict[str, Any]:
    """The event of a change of the node's conditions (``NodeReady`` ...), as kubelet records it: named for its time,
    so each change is an event of its own."""
    stamp = now.timestamp()
    return node_event(node_name, reason, f"Node {node_name} status is now: {reason}", "Normal", 1, stamp, stamp,
                      name=f"{node_name}.{int(stamp * 1e9):x}.{reason.lower()}")


def new_lease(node_name: str, node_uid: str | None, now: datetime) -> dict[str, Any]:
    """The node's Lease as kubelet creates it, owned by the Node so it goes when the Node does."""
    metadata: dict[str, Any] = {"name": node_name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": LEASE_DURATION_S, "renewTime": micro_time(now)},
    }


class NodeRegistrar:
    """One public step, ``sync()``; ``run()`` repeats it until stopped."""

    def __init__(
        self,
        api: ApiClient,
        facts: Callable[[], NodeFacts],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval_s: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self._api = api
        self._facts = facts
        self._clock = clock
        self._interval_s = interval_s
        self._node_uid: str | None = None
        self._conditions: list[dict[str, Any]] = []
        self._lease: dict[str, Any] | None = None
        self.last_success: datetime | None = None

    @property
    def registered(self) -> bool:
        return self._node_uid is not None

    def sync(self) -> None:
        """Register if needed, post the node's status, renew its lease. Raises CloudUnavailable / ApiError."""
        now = self._clock()
        node = node_object(self._facts(), now, self._conditions)
        name = node["metadata"]["name"]
        if not self.registered:
            self._register(node)
        try:
            self._patch_status(name, node["status"])
        except ApiError as exc:
            if exc.code != 404:
                raise
            log.warning("node vanished from the cloud; registering again", node=name)
            self._node_uid = None
            self._register(node)
            self._patch_status(name, node["status"])
        self._record_events(name, self._conditions, node["status"]["conditions"], now)
        self._conditions = node["status"]["conditions"]
        self._renew_lease(name, now)
        self.last_success = now

    def run(self, stop: threading.Event) -> None:
        """Heartbeat every ``interval_s`` until ``stop`` is set; failures are logged, never raised, and
        retried sooner (``retry_delay``)."""
        failures = 0
        while not stop.is_set():
            try:
                self.sync()
                failures = 0
            except (CloudUnavailable, ApiError) as exc:
                failures += 1
                log.warning("node heartbeat failed", error=str(exc), failures=failures)
            except Exception:
                failures += 1
                log.exception("node heartbeat crashed")
            stop.wait(retry_delay(failures, self._interval_s))

    def _register(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        try:
            created = self._api.post(NODES, node)
            log.info("node registered", node=name)
        except ApiError as exc:
            if exc.code != 409:
                raise
            # Already registered (an earlier run of this agent): keep the object, refresh our labels.
            created = self._api.patch(f"{NODES}/{name}", {"metadata": {"labels": node["metadata"]["labels"]}})
            log.info("node already registered", node=name)
        self._node_uid = created["metadata"]["uid"]

    def _record_events(
        self, name: str, previous: list[dict[str, Any]], current: list[dict[str, Any]], now: datetime
    ) -> None:
        """Best effort, as kubelet's recorder: a lost event never fails the heartbeat."""
        for reason in condition_events(previous, current):
            try:
                self._api.post(EVENTS, condition_event(name, reason, now))
            except (CloudUnavailable, ApiError) as exc:
                log.info("node event not recorded", reason=reason, error=str(exc))

    def _patch_status(self, name: str, status: dict[str, Any]) -> None:
        self._api.patch(f"{NODES}/{name}/status", {"status": status})

    def _renew_lease(self, name: str, now: datetime) -> None:
        """Create the lease, or renew it with an optimistic update; a conflict or a lost lease retries once."""
        for attempt in range(2):
            try:
                if self._lease is None:
                    self._lease = self._api.get(f"{LEASES}/{name}")
                lease = {**self._lease, "spec": {
                    **self._lease.get("spec", {}),
                    "holderIdentity": name,
                    "leaseDurationSeconds": LEASE_DURATION_S,
                    "renewTime": micro_time(now),
                }}
                self._lease = self._api.put(f"{LEASES}/{name}", lease)
                return
            except ApiError as exc:
                self._lease = None
                if exc.code == 404:
                    self._lease = self._api.post(LEASES, new_lease(name, self._node_uid, now))
                    return
                if exc.code != 409 or attempt:
                    raise
