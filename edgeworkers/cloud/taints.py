"""Taints from node conditions and the binder's taint filter.

kube-controller-manager's TaintNodesByCondition keeps a ``NoSchedule`` taint on each node whose pressure condition is
True (``node.kubernetes.io/memory-pressure``, ``disk-pressure``, ``pid-pressure``); kube-scheduler's TaintToleration
filter keeps a pod off a node with a ``NoSchedule`` or ``NoExecute`` taint it does not tolerate.
"""
from __future__ import annotations

CONDITION_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
}
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"  # the taint a cordoned node stands for (NodeUnschedulable)
_FILTERED_EFFECTS = ("NoSchedule", "NoExecute")


def _condition_taint(taint: dict) -> bool:
    return taint.get("key") in CONDITION_TAINTS.values() and taint.get("effect") == "NoSchedule"


def condition_taints(taints: list[dict], conditions: list[dict], now: str) -> list[dict]:
    """``taints`` with the pressure taints of the conditions that are True added (``timeAdded`` ``now``) and the
    others removed; the same list when nothing changes."""
    wanted = {CONDITION_TAINTS[c["type"]] for c in conditions if c.get("type") in CONDITION_TAINTS
              and c.get("status") == "True"}
    kept = [t for t in taints if not _condition_taint(t) or t["key"] in wanted]
    present = {t["key"] for t in kept if _condition_taint(t)}
    added = [{"key": key, "effect": "NoSchedule", "timeAdded": now} for key in sorted(wanted - present)]
    return taints if not added and len(kept) == len(taints) else [*kept, *added]


def tolerates(toleration: dict, taint: dict) -> bool:
    """core/v1 Toleration.ToleratesTaint: an empty key with ``Exists`` matches every taint, an empty effect every
    effect."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(pod: dict, node: dict) -> dict | None:
    """The first ``NoSchedule``/``NoExecute`` taint of ``node`` that ``pod`` does not tolerate, if any."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in _FILTERED_EFFECTS and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def untolerated_message(taint: dict) -> str:
    """The scheduler's reason, as kube-scheduler words it: ``node(s) had untolerated taint {key: value}``."""
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
