"""Taint-based eviction, as kube-controller-manager's taint eviction controller (the NoExecuteTaintManager): a pod bound
to a node with a ``NoExecute`` taint it does not tolerate is deleted; one that tolerates it for ``tolerationSeconds``
is deleted once they have run out; one that tolerates it without a limit stays.

The node lifecycle controller puts the ``unreachable``/``not-ready`` NoExecute taints only on nodes that are not
autonomous (``nodelifecycle.py``); any other NoExecute taint (``kubectl taint nodes n k=v:NoExecute``) evicts on every
node, as in kube. Every pod tolerates ``unreachable`` and ``not-ready`` for 300 s unless it says otherwise
(``tolerations.py``, kube-apiserver's DefaultTolerationSeconds).

An eviction is kube's: the pod gets the ``DisruptionTarget`` condition (``DeletionByTaintManager``), a
``TaintManagerEviction`` event, and a graceful delete with its own grace period. A pod on an unreachable node then
stays Terminating at the cloud until its node returns and confirms it gone, as in kube; a controller no longer counts it.

One difference: a toleration's time counts from the taint's ``timeAdded`` (from when this controller first saw a taint
that has none), where kube's counts from when its controller noticed the taint. A deadline is then the same after the
cloud restarts, and the decision a pure function of the pod, the taints and the time.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import orjson
import structlog

from edgeworkers.cloud.recorder import event_on, record
from edgeworkers.cloud.store import Clock, Store
from edgeworkers.cloud.taints import tolerates
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.printers import parse_time
from edgeworkers.k8s.timefmt import format_time

log = structlog.get_logger(__name__)

COMPONENT = "taint-eviction-controller"
NO_EXECUTE = "NoExecute"
DEFAULT_GRACE_S = 30


def eviction_deadline(pod: dict, taints: list[dict], since: Callable[[dict], dt.datetime]) -> dt.datetime | None:
    """When ``pod`` is to be evicted for the node's ``taints`` (each present since ``since(taint)``); None: never.

    As kube's taint manager: each NoExecute taint is matched with the first toleration of it; an untolerated taint
    evicts at once, a toleration without ``tolerationSeconds`` for ever, one with it (0 or less: at once) once they
    have passed.
    """
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    deadlines = []
    for taint in taints:
        if taint.get("effect") != NO_EXECUTE:
            continue
        toleration = next((t for t in tolerations if tolerates(t, taint)), None)
        if toleration is None:
            deadlines.append(since(taint))
        elif isinstance(seconds := toleration.get("tolerationSeconds"), int):
            deadlines.append(since(taint) + dt.timedelta(seconds=max(seconds, 0)))
    return min(deadlines, default=None)


def disruption_target(status: dict, now: str) -> dict:
    """``status`` with kube's ``DisruptionTarget`` condition of a pod the taint manager deletes."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    conditions.append({"type": "DisruptionTarget", "status": "True", "lastProbeTime": None, "lastTransitionTime": now,
                       "reason": "DeletionByTaintManager", "message": "Taint manager: deleting due to NoExecute taint"})
    return {**status, "conditions": conditions}


class TaintEviction:
    """Evicts the pods whose node's NoExecute taints they no longer tolerate; ``evict`` is one pass."""

    def __init__(self, store: Store, hub: Hub, clock: Clock) -> None:
        self._store, self._hub, self._clock = store, hub, clock
        self._seen: dict[tuple[str, str, str, str], dt.datetime] = {}  # taints without timeAdded: first seen

    def evict(self) -> list[str]:
        """One pass over the pods of NoExecute-tainted nodes; returns the keys (``namespace/name``) evicted."""
        now = self._clock()
        tainted = {}
        for node in self._store.list("nodes"):
            taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE]
            if taints:
                tainted[node["metadata"]["name"]] = taints
        self._seen = {key: when for key, when in self._seen.items() if key[0] in tainted}

        def since(node: str) -> Callable[[dict], dt.datetime]:
            def added(taint: dict) -> dt.datetime:
                key = (node, taint.get("key") or "", taint.get("value") or "", NO_EXECUTE)
                return parse_time(taint.get("timeAdded")) or self._seen.setdefault(key, now)
            return added

        evicted = []
        for pod in self._store.list("pods") if tainted else []:
            node = (pod.get("spec") or {}).get("nodeName")
            if node not in tainted or "deletionTimestamp" in pod["metadata"]:
                continue
            deadline = eviction_deadline(pod, tainted[node], since(node))
            if deadline is not None and deadline <= now:
                self._evict(pod, node, now)
                evicted.append(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
        return evicted

    def _evict(self, pod: dict, node: str, now: dt.datetime) -> None:
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        log.warning("evicting a pod for its node's NoExecute taint", pod=f"{namespace}/{name}", node=node)
        marked = orjson.loads(orjson.dumps(pod))
        marked["status"] = disruption_target(marked.get("status") or {}, format_time(now))
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)
        with self._store.atomic():
            self._hub.publish(self._store.update("pods", marked))
            if isinstance(grace, int) and grace > 0:
                self._hub.publish(self._store.begin_deletion("pods", namespace, name, grace))
            else:
                self._hub.publish(self._store.delete("pods", namespace, name))
            record(self._store, self._hub, event_on(pod, "Pod", "v1", "Normal", "TaintManagerEviction",
                                                    f"Marking for deletion Pod {namespace}/{name}", COMPONENT, now))
