"""The node lifecycle controller: a node that stops sending heartbeats turns Ready=Unknown.

As kube-controller-manager's: every ``period_s`` it looks at each Node's Lease (``spec.renewTime``) and
its Ready condition's ``lastHeartbeatTime``. It times them by its own clock, from when it saw either
change (so an edge node's skewed clock does not matter, and a server restart gives every node a full
grace period). A node silent for ``grace_period_s`` gets kubelet's conditions set to Unknown, the
``node.kubernetes.io/unreachable:NoSchedule`` taint, and its pods' Ready condition set to False.

Unlike kube's, by default it never evicts (no ``NoExecute`` taint): an edge node keeps running its pods while
disconnected, as KubeEdge's edge autonomy. When the node comes back it posts Ready=True itself; the
taint follows the Ready condition and goes as soon as Ready is no longer Unknown. The pressure conditions' NoSchedule
taints follow those conditions the same way (``cloud/taints.py``).

A node annotated ``node.edgeworkers.io/autonomy: "false"`` is not autonomous: it gets kube's taint-based eviction, the
``node.kubernetes.io/unreachable:NoExecute`` taint while Ready is Unknown (``not-ready:NoExecute`` while False), and
its pods that do not tolerate it, or no longer, are evicted (``tainteviction.py``, run after each pass). The name
follows OpenYurt's ``node.beta.openyurt.io/autonomy``, the annotation operators of edge clusters know; its sense is
the other way round, because here autonomy is the default and eviction the exception (kube's default and OpenYurt's
are the other way: a node evicts unless annotated ``"true"``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import orjson
import structlog

from edgeworkers.cloud.store import Clock, Store
from edgeworkers.cloud.tainteviction import NO_EXECUTE, TaintEviction
from edgeworkers.cloud.taints import condition_taints
from edgeworkers.cloud.tolerations import NOT_READY
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.timefmt import format_time

log = structlog.get_logger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
# "false": the node is not autonomous, kube's taint-based eviction applies to it (the module's docstring).
AUTONOMY_ANNOTATION = "node.edgeworkers.io/autonomy"
# The NoExecute taint of a node that is not autonomous, by the status of its Ready condition.
EVICTION_TAINTS = {"Unknown": UNREACHABLE, "False": NOT_READY}
# The conditions kubelet posts; others (NetworkUnavailable) are not the kubelet's to lose.
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass(frozen=True)
class Probe:
    """A node's heartbeat as last seen, and when (by the controller's clock) it was first seen so."""
    beat: tuple[str, str]
    seen: dt.datetime


def heartbeat(lease: dict | None, node: dict) -> tuple[str, str]:
    """The node's signs of life: its Lease's renewTime and its Ready condition's lastHeartbeatTime."""
    renewed = ((lease or {}).get("spec") or {}).get("renewTime") or ""
    ready = _condition((node.get("status") or {}).get("conditions") or [], "Ready") or {}
    return renewed, ready.get("lastHeartbeatTime") or ""


def observe(previous: Probe | None, beat: tuple[str, str], now: dt.datetime) -> Probe:
    """The probe after seeing ``beat`` at ``now``: a new or changed heartbeat restarts the count."""
    if previous is not None and previous.beat == beat:
        return previous
    return Probe(beat, now)


def node_is_stale(probe: Probe, now: dt.datetime, grace_s: float) -> bool:
    """True when the node's heartbeat has not changed for longer than ``grace_s``."""
    return (now - probe.seen).total_seconds() > grace_s


def unknown_conditions(conditions: list[dict], now: str, created: str) -> list[dict]:
    """Kubelet's conditions of a node that stopped posting status, all Unknown.

    A condition that changes status gets ``lastTransitionTime`` ``now``; its ``lastHeartbeatTime`` stays.
    One kubelet never posted is added (``NodeStatusNeverUpdated``, heartbeat at ``created``).
    """
    out = [dict(c) for c in conditions]
    for kind in KUBELET_CONDITIONS:
        current = _condition(out, kind)
        if current is None:
            out.append({"type": kind, "status": "Unknown", "lastHeartbeatTime": created, "lastTransitionTime": now,
                        "reason": "NodeStatusNeverUpdated", "message": "Kubelet never posted node status."})
        elif current.get("status") != "Unknown":
            current.update(status="Unknown", reason="NodeStatusUnknown",
                           message="Kubelet stopped posting node status.", lastTransitionTime=now)
    return out


def unreachable_taints(taints: list[dict], unreachable: bool, now: str) -> list[dict]:
    """``taints`` with the unreachable NoSchedule taint added (``timeAdded`` ``now``) or removed."""
    present = any(_is_unreachable(t) for t in taints)
    if present == unreachable:
        return taints
    if unreachable:
        return [*taints, {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now}]
    return [t for t in taints if not _is_unreachable(t)]


def autonomous(node: dict) -> bool:
    """Whether the node keeps its pods while silent (the default), or is annotated not to."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(AUTONOMY_ANNOTATION, "")).strip().lower() != "false"


def eviction_taints(taints: list[dict], ready: str | None, evicting: bool, now: str) -> list[dict]:
    """``taints`` with the NoExecute taint kube's node lifecycle controller keeps for a Ready condition of status
    ``ready`` when the node is ``evicting`` (not autonomous), ``timeAdded`` ``now`` when new; without it otherwise."""
    wanted = EVICTION_TAINTS.get(ready or "") if evicting else None
    kept = [t for t in taints if not _is_eviction_taint(t) or t["key"] == wanted]
    if wanted and not any(_is_eviction_taint(t) for t in kept):
        return [*kept, {"key": wanted, "effect": NO_EXECUTE, "timeAdded": now}]
    return taints if len(kept) == len(taints) else kept


def pod_not_ready(status: dict, now: str) -> dict | None:
    """``status`` with its Ready condition False, as kube's MarkPodsNotReady; None when there is no
    Ready condition or it is False already. Reason, message and the other conditions are kept."""
    conditions = status.get("conditions") or []
    for i, condition in enumerate(conditions):
        if condition.get("type") == "Ready":
            if condition.get("status") == "False":
                return None
            changed = [*conditions]
            changed[i] = {**condition, "status": "False", "lastTransitionTime": now}
            return {**status, "conditions": changed}
    return None


def _condition(conditions: list[dict], kind: str) -> dict | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _is_unreachable(taint: dict) -> bool:
    return taint.get("key") == UNREACHABLE and taint.get("effect") == "NoSchedule"


def _is_eviction_taint(taint: dict) -> bool:
    return taint.get("key") in EVICTION_TAINTS.values() and taint.get("effect") == NO_EXECUTE


def _copy(obj: dict) -> dict:
    return orjson.loads(orjson.dumps(obj))


class NodeLifecycle:
    """Marks silent nodes (once per silence), keeps the unreachable taint in step with Ready, and evicts from the nodes
    that are not autonomous."""

    def __init__(self, store: Store, hub: Hub, clock: Clock, grace_period_s: float = 40.0,
                 period_s: float = 5.0) -> None:
        self._store, self._hub, self._clock = store, hub, clock
        self._grace_s, self._period_s = grace_period_s, period_s
        self._probes: dict[str, Probe] = {}
        self._marked: set[str] = set()  # silent nodes already marked: not again until they beat again
        self._eviction = TaintEviction(store, hub, clock)
        store.on_rollback(self._marked.clear)  # a marking a failed commit undid is made again at the next pass

    def monitor(self) -> None:
        """One pass over every node."""
        now = self._clock()
        nodes = self._store.list("nodes")
        names = {n["metadata"]["name"] for n in nodes}
        self._probes = {name: p for name, p in self._probes.items() if name in names}
        self._marked &= names
        for node in nodes:
            self._check(node, now)
        self._eviction.evict()

    def _check(self, node: dict, now: dt.datetime) -> None:
        name, stamp = node["metadata"]["name"], format_time(now)
        lease = self._store.find("leases", LEASE_NAMESPACE, name)
        probe = self._probes[name] = observe(self._probes.get(name), heartbeat(lease, node), now)
        status, spec = node.get("status") or {}, node.get("spec") or {}
        conditions = new_conditions = status.get("conditions") or []
        stale = node_is_stale(probe, now, self._grace_s)
        silenced = stale and name not in self._marked
        if silenced:
            self._marked.add(name)
            log.warning("node stopped posting status", node=name, grace_s=self._grace_s)
            new_conditions = unknown_conditions(conditions, stamp, node["metadata"].get("creationTimestamp", stamp))
        elif not stale:
            self._marked.discard(name)
        taints = spec.get("taints") or []
        ready = (_condition(new_conditions, "Ready") or {}).get("status")
        new_taints = condition_taints(unreachable_taints(taints, ready == "Unknown", stamp), new_conditions, stamp)
        new_taints = eviction_taints(new_taints, ready, not autonomous(node), stamp)
        new = node
        if new_conditions != conditions:
            new = {**new, "status": {**status, "conditions": new_conditions}}
        if new_taints != taints:
            rest = {k: v for k, v in spec.items() if k != "taints"}
            new = {**new, "spec": {**rest, "taints": new_taints} if new_taints else rest}
        if new is not node:
            self._hub.publish(self._store.update("nodes", _copy(new)))
        if silenced:
            self._mark_pods(name, stamp)

    def _mark_pods(self, node_name: str, now: str) -> None:
        for pod in self._store.list("pods"):
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            new = _copy(pod)
            status = pod_not_ready(new.get("status") or {}, now)
            if status is not None:
                new["status"] = status
                self._hub.publish(self._store.update("pods", new))

    async def run(self) -> None:
        """Monitor every ``period_s`` for as long as the server runs."""
        while True:
            await asyncio.sleep(self._period_s)
            try:
                self.monitor()
            except Exception:  # one failed pass must not stop the next
                log.exception("node monitor pass failed")
