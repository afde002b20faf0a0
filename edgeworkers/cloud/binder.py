"""The cloud's binder, a minimal kube-scheduler: bind each unbound pod to a node that passes kube-scheduler's filters
(``placement.py``: nodeSelector and required node affinity, resource requests against allocatable; taints and
tolerations, a node that is not Ready counting as tainted ``not-ready`` or ``unreachable`` as kube taints it).

Among fitting nodes the one running the fewest pods wins (ties by name). A pod that fits nowhere
stays Pending with ``PodScheduled=False``/``Unschedulable`` and kube-scheduler's usual message; it is
tried again whenever a node or an unbound pod changes. (The edge's periodic jobs are the ``scheduler`` package.)
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
import structlog

from edgeworkers.cloud import taints
from edgeworkers.cloud.placement import SELECTOR_MISMATCH, NodeLoads, insufficient, matches_node, pod_requests
from edgeworkers.cloud.recorder import event_on, record
from edgeworkers.cloud.store import ADDED, DELETED, MODIFIED, Clock, Event, Store
from edgeworkers.cloud.taints import tolerates, untolerated_message, untolerated_taint
from edgeworkers.cloud.tolerations import NOT_READY, UNREACHABLE
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.timefmt import format_time

log = structlog.get_logger(__name__)

SCHEDULER_NAME = "default-scheduler"
UNSCHEDULABLE = "node(s) were unschedulable"
_UNSCHEDULABLE_TAINT = {"key": taints.UNSCHEDULABLE, "effect": "NoSchedule"}


@dataclass(frozen=True)
class Decision:
    node: str | None
    message: str = ""


def node_ready(node: dict) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _readiness_taint(node: dict) -> dict | None:
    """The taint kube's node lifecycle puts on a node that is not Ready (Unknown: unreachable), if any."""
    if node_ready(node):
        return None
    conditions = (node.get("status") or {}).get("conditions") or []
    unknown = any(c.get("type") == "Ready" and c.get("status") == "Unknown" for c in conditions)
    return {"key": UNREACHABLE if unknown else NOT_READY, "effect": "NoSchedule"}


def choose_node(pod: dict, nodes: list[dict], placed: Mapping[str, Sequence[dict]]) -> Decision:
    """Where ``pod`` goes, or why it can go nowhere; ``placed`` holds each node's pods that still run."""
    reasons: Counter[str] = Counter()
    fitting: list[str] = []
    asked = pod_requests(pod)
    for node in nodes:
        name = node["metadata"]["name"]
        readiness = _readiness_taint(node)
        tainted = {"metadata": node["metadata"], "spec": {**(node.get("spec") or {}), "taints": [
            *((node.get("spec") or {}).get("taints") or []), *([readiness] if readiness else [])]}}
        if (node.get("spec") or {}).get("unschedulable") and not any(
                tolerates(t, _UNSCHEDULABLE_TAINT) for t in (pod.get("spec") or {}).get("tolerations") or []):
            reasons[UNSCHEDULABLE] += 1  # kube's NodeUnschedulable filter: a DaemonSet's pods tolerate it
        elif (taint := untolerated_taint(pod, tainted)) is not None:  # pressure, readiness and the node's own
            reasons[untolerated_message(taint)] += 1
        elif not matches_node(pod, node):
            reasons[SELECTOR_MISMATCH] += 1
        elif short := insufficient(asked, node, placed.get(name, ())):
            reasons.update(short)
        else:
            fitting.append(name)
    if fitting:
        return Decision(min(fitting, key=lambda n: (len(placed.get(n, ())), n)))
    if not nodes:
        return Decision(None, "no nodes available to schedule pods")
    detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return Decision(None, f"0/{len(nodes)} nodes are available: {detail}.")


def bound(pod: dict, node: str, now: str) -> dict:
    """A copy of ``pod`` bound to ``node``, with ``PodScheduled=True``."""
    new = orjson.loads(orjson.dumps(pod))
    new.setdefault("spec", {})["nodeName"] = node
    _set_condition(new, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                         "lastTransitionTime": now})
    return new


def unschedulable(pod: dict, message: str, now: str) -> dict | None:
    """A copy of ``pod`` marked Unschedulable, or None when it already says so."""
    current = next((c for c in (pod.get("status") or {}).get("conditions") or []
                    if c.get("type") == "PodScheduled"), None)
    if current and current.get("reason") == "Unschedulable" and current.get("message") == message:
        return None
    new = orjson.loads(orjson.dumps(pod))
    new.setdefault("status", {})["phase"] = "Pending"
    _set_condition(new, {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                         "lastTransitionTime": now, "reason": "Unschedulable", "message": message})
    return new


def scheduling_event(pod: dict, type_: str, reason: str, message: str, when: dt.datetime) -> dict:
    """The core/v1 Event kube-scheduler records on a pod (``Scheduled``, ``FailedScheduling``)."""
    return event_on(pod, "Pod", "v1", type_, reason, message, SCHEDULER_NAME, when)


def _set_condition(pod: dict, condition: dict) -> None:
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    for i, c in enumerate(conditions):
        if c.get("type") == condition["type"]:
            if c.get("status") == condition["status"]:
                condition["lastTransitionTime"] = c.get("lastTransitionTime", condition["lastTransitionTime"])
            conditions[i] = condition
            return
    conditions.append(condition)


def _scheduling_facts(node: dict) -> tuple:
    """What the binder's filters read of a node (kube-scheduler's ``nodeSchedulingPropertiesChange``): a heartbeat
    that changes none of it makes no waiting pod fit."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    conditions = sorted((str(c.get("type")), str(c.get("status"))) for c in status.get("conditions") or [])
    return (spec.get("unschedulable"), spec.get("taints"), node["metadata"].get("labels"), status.get("allocatable"),
            conditions)


def _pending(pod: dict) -> bool:
    return not pod.get("spec", {}).get("nodeName") and "deletionTimestamp" not in pod["metadata"]


class Binder:
    """Binds the unbound pods that changed, and every unbound pod when a node changes.

    Only node changes can make a waiting pod fit (the pod count only ranks fitting nodes), so a pod
    event looks at that one pod; and only a change of what the filters read (as kube-scheduler's
    ``nodeSchedulingPropertiesChange``), not a heartbeat, looks at every pod again. The first pass looks at all of
    them: pods left unbound by a previous run. What each node runs (``NodeLoads``) is listed at the first pass and
    then kept from the published events; listed again after a failed commit or pass.
    """

    def __init__(self, store: Store, hub: Hub, clock: Clock) -> None:
        self._store, self._hub, self._clock = store, hub, clock
        self._wake = asyncio.Event()
        self._dirty: set[tuple[str, str]] = set()
        self._everything = True
        self._loads: NodeLoads | None = None
        hub.add_listener(self._on_event)
        store.on_rollback(self._retry_all)

    def _retry_all(self) -> None:
        """A failed commit undid writes, bindings among them perhaps: look at every unbound pod again."""
        self._everything = True
        self._loads = None
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if event.resource == "pods" and self._loads is not None:
            if event.type != ADDED:
                self._loads.remove(event.old if event.type == MODIFIED else event.object)
            if event.type != DELETED:
                self._loads.add(event.object)
        if event.resource == "nodes":
            if event.type == MODIFIED and event.old is not None and \
                    _scheduling_facts(event.old) == _scheduling_facts(event.object):
                return
            self._everything = True
        elif event.resource == "pods" and event.type != DELETED and _pending(event.object):
            meta = event.object["metadata"]
            self._dirty.add((meta["namespace"], meta["name"]))
        else:
            return
        self._wake.set()

    def _pending_pods(self) -> list[dict]:
        """The pods to look at; they stay marked until ``_done`` (a pass that fails leaves them for the next)."""
        if self._everything:
            pods = self._store.list("pods")
        else:
            pods = [p for key in sorted(self._dirty) if (p := self._store.find("pods", *key)) is not None]
        return [p for p in pods if _pending(p)]

    def _done(self, pod: dict) -> None:
        self._dirty.discard((pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def bind_pending(self) -> int:
        """One pass over the pods that may have become schedulable; returns how many were bound.

        A pod leaves the set to look at only once decided (bound or marked unschedulable): when the pass fails
        half-way, the rest are tried again at the next change. A full pass clears ``everything`` only at its end."""
        try:
            return self._pass()
        except BaseException:
            self._loads = None  # a write that failed half-way: list what runs where again
            raise

    def _pass(self) -> int:
        everything = self._everything
        pending = self._pending_pods()
        if not pending:
            self._dirty.clear()
            self._everything = self._everything and not everything
            return 0
        nodes = self._store.list("nodes")
        if self._loads is None:
            self._loads = NodeLoads(self._store.list("pods"))
        placed = self._loads  # each binding's event puts its pod on its node (``_on_event``)
        when = self._clock()
        now = format_time(when)
        bound_count = 0
        for pod in pending:
            decision = choose_node(pod, nodes, placed)
            meta = pod["metadata"]
            if decision.node:
                bound_count += 1
                self._write(bound(pod, decision.node, now), scheduling_event(
                    pod, "Normal", "Scheduled",
                    f"Successfully assigned {meta['namespace']}/{meta['name']} to {decision.node}", when))
            elif (marked := unschedulable(pod, decision.message, now)) is not None:
                self._write(marked, scheduling_event(pod, "Warning", "FailedScheduling", decision.message, when))
            self._done(pod)
        self._dirty.clear()  # the rest were not pending (bound, deleting or gone)
        if everything:
            self._everything = False
        return bound_count

    def _write(self, pod: dict, event: dict) -> None:
        self._hub.publish(self._store.update("pods", pod))
        record(self._store, self._hub, event)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self.bind_pending()
            except Exception:  # a failed pass must not stop scheduling; the next change retries
                log.exception("scheduling pass failed")
