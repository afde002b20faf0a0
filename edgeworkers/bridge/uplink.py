"""The uplink: drains the status outbox to the cloud, in order, losing nothing while the cloud is away.

Each item is acked once the cloud accepted it, or once the cloud refused it for good (the pod is gone or replaced,
or the request is invalid): a poison item is logged and dropped, never retried forever in front of the others. While
the cloud is unreachable the items stay in Redis, compacted per pod by the outbox, and the uplink backs off (0.5 s
doubling to 30 s, with jitter) so a node coming back does not hammer it. As kubelet's status manager:

- ``pod_status``: PATCH ``pods/<name>/status`` with the pod's uid, so the cloud refuses (409) a status for a pod of
  that name re-created meanwhile; a static pod's status goes to its mirror pod, created first when missing;
- ``pod_deleted``: DELETE the pod with grace 0 and its uid as precondition (the node confirms the containers are
  gone); for a static pod, its mirror pod goes;
- ``event``: POST a new event, PATCH the count of a repeated one (``events``); the outbox hands them over only once
  no status waits.

Logs name pods, never their status or anything a secret could be in.
"""
from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import structlog

from edgeworkers.bridge.mirror import MirrorPods, final_delete, pod_path
from edgeworkers.kubeclient import MERGE_PATCH, ApiClient, ApiError, CloudUnavailable
from edgeworkers.metamanager.outbox import EVENT, NODE_METRICS, POD_DELETED, POD_STATUS, Item, Outbox
from edgeworkers.metamanager.store import StoreError

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 0.2  # idle: how often to look for new items (one ZCARD)
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
BATCH = 100
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/nodes"  # PUT <node>: the node's usage (edgeworkers' cloud only)
GONE = (404, 409)  # the pod is gone, or another pod of that name replaced it: nothing left to tell
RETRY_LATER = (401, 429)  # refused for now (credentials being rotated, throttled), not for this item: keep it
# The status fields the node owns: a merge patch sets each one the status omits to null, so a field the node no longer
# reports (a message, a pod IP, the containers of a previous spec) does not linger at the cloud.
NODE_STATUS_FIELDS = (
    "phase", "conditions", "message", "reason", "hostIP", "hostIPs", "podIP", "podIPs", "startTime", "qosClass",
    "initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses",
)


def backoff_delay(failures: int, jitter: float) -> float:
    """Seconds before trying again after ``failures`` consecutive failed drains; ``jitter`` in [0, 1) spreads the
    delay over +-20 %, so the nodes of a region do not all come back in the same instant."""
    base = min(BACKOFF_INITIAL_S * 2 ** (failures - 1), BACKOFF_MAX_S)
    return base * (0.8 + 0.4 * jitter)


class Uplink:
    """One step, ``drain()``; ``run()`` repeats it whenever items wait, until stopped."""

    def __init__(
        self,
        api: ApiClient,
        outbox: Outbox,
        mirrors: MirrorPods,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._api = api
        self._outbox = outbox
        self._mirrors = mirrors
        self._poll_interval_s = poll_interval_s
        self._jitter = jitter

    def drain(self) -> int:
        """Send the waiting items in order, acking each the cloud accepted or refused for good; return how many
        were acked. Raises CloudUnavailable when the cloud went away: that item and those after it stay."""
        done = 0
        while items := self._outbox.peek(BATCH):
            for item in items:
                try:
                    self._send(item)
                except (CloudUnavailable, StoreError):
                    raise  # not the item's fault: it stays
                except Exception:  # a malformed item, or a bug: drop it rather than stop the queue behind it
                    log.exception("uplink: item could not be sent; dropped", item=item.key)
                self._outbox.ack(item)  # False when a newer item replaced it meanwhile: that one is sent next
                done += 1
        return done

    def run(self, stop: threading.Event) -> None:
        """Drain whenever items wait (polling every ``poll_interval_s`` when idle), backing off while the cloud is
        unreachable, until ``stop`` is set."""
        failures = 0
        while not stop.is_set():
            delay = self._poll_interval_s
            try:
                if len(self._outbox):
                    self.drain()
                if failures:
                    log.info("uplink: the cloud is reachable again", failures=failures)
                failures = 0
            except CloudUnavailable as exc:
                failures += 1
                if failures == 1:
                    log.warning("uplink: the cloud is unreachable; statuses wait in the outbox", error=str(exc))
                delay = backoff_delay(failures, self._jitter())
            except Exception:
                failures += 1
                log.exception("uplink: drain crashed")
                delay = backoff_delay(failures, self._jitter())
            stop.wait(delay)

    # --- one item ------------------------------------------------------------------------------

    def _send(self, item: Item) -> None:
        """Deliver ``item``; return normally when it is done with (delivered, or refused for good)."""
        payload = item.payload
        if payload["op"] == NODE_METRICS:
            self._send_metrics(payload)
            return
        pod = f"{payload['namespace']}/{payload['name']}"
        try:
            if payload["op"] == POD_STATUS:
                self._send_status(payload)
            elif payload["op"] == POD_DELETED:
                self._send_deleted(payload)
            elif payload["op"] == EVENT:
                self._send_event(payload)
            else:
                log.warning("uplink: unknown outbox item dropped", pod=pod, op=payload["op"])
        except ApiError as exc:
            if exc.code in RETRY_LATER:
                raise CloudUnavailable(f"{exc.code} {exc.reason}") from exc
            if exc.code in GONE or _uid_refused(exc):
                log.info("uplink: pod gone or replaced at the cloud; item dropped", pod=pod, op=payload["op"],
                         code=exc.code)
            else:
                log.warning("uplink: the cloud refused an item; dropped", pod=pod, op=payload["op"], code=exc.code,
                            reason=exc.reason, error=exc.message)

    def _send_status(self, payload: dict[str, Any]) -> None:
        namespace, name = payload["namespace"], payload["name"]
        if not payload["mirror"]:
            self._patch_status(namespace, name, payload["uid"], payload["status"])
            return
        try:
            self._patch_status(namespace, name, self._mirrors.uid_of(namespace, name), payload["status"])
        except ApiError as exc:
            if exc.code != 404:
                raise
            mirror = self._mirrors.ensure(namespace, name)
            if mirror is None:  # the static pod is gone, or a cloud pod holds the name
                raise
            self._patch_status(namespace, name, mirror["metadata"].get("uid"), payload["status"])

    def _patch_status(self, namespace: str, name: str, uid: str | None, status: dict[str, Any]) -> None:
        body: dict[str, Any] = {"status": {**dict.fromkeys(NODE_STATUS_FIELDS), **status}}
        if uid:
            body["metadata"] = {"uid": uid}  # a pod of another uid there refuses it (422 metadata.uid, as kube's)
        self._api.patch(f"{pod_path(namespace, name)}/status", body, MERGE_PATCH)

    def _send_deleted(self, payload: dict[str, Any]) -> None:
        namespace, name = payload["namespace"], payload["name"]
        if payload["mirror"]:
            self._mirrors.delete(namespace, name)
        else:
            self._api.delete(pod_path(namespace, name), final_delete(payload["uid"]))


    def _send_metrics(self, payload: dict[str, Any]) -> None:
        """PUT the usage report to the cloud's metrics.k8s.io (an edgeworkers write path: a real API server has none,
        and answers 404, so the report is dropped)."""
        try:
            self._api.put(f"{METRICS_PATH}/{payload['node']}", payload["report"])
        except ApiError as exc:
            if exc.code in RETRY_LATER:
                raise CloudUnavailable(f"{exc.code} {exc.reason}") from exc
            log.debug("uplink: usage report refused; dropped", code=exc.code)

    def _send_event(self, payload: dict[str, Any]) -> None:
        """As client-go's recordToSink: a repeat (count above 1) patches the event's count, lastTimestamp and message,
        and creates it when the cloud has none (never seen, or expired); a first occurrence is created (one that
        exists already is patched)."""
        event, events = payload["event"], f"/api/v1/namespaces/{payload['namespace']}/events"
        changes = {field: event.get(field) for field in ("count", "lastTimestamp", "message")}
        if (event.get("count") or 1) > 1:
            try:
                self._api.patch(f"{events}/{payload['name']}", changes, MERGE_PATCH)
                return
            except ApiError as exc:
                if exc.code != 404:
                    raise
        try:
            self._api.post(events, event)
        except ApiError as exc:
            if exc.code != 409:
                raise
            self._api.patch(f"{events}/{payload['name']}", changes, MERGE_PATCH)


def _uid_refused(exc: ApiError) -> bool:
    """The API server refused a patch for its ``metadata.uid`` (422 "field is immutable", as kube-apiserver answers
    a patch carrying another pod's uid): the pod was replaced by another of the same name."""
    return exc.code == 422 and "metadata.uid" in exc.message
