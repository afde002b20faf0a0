"""The binder's filters, as kube-scheduler's plugins judge one pod on one node (pure functions).

- NodeAffinity: ``nodeSelector`` and the required ``nodeAffinity`` terms (``matchExpressions`` on labels with
  ``In``/``NotIn``/``Exists``/``DoesNotExist``/``Gt``/``Lt``, ``matchFields`` on ``metadata.name``); terms are ORed,
  a term's requirements ANDed, as ``k8s.io/component-helpers/scheduling/corev1/nodeaffinity``.
- NodeResourcesFit: the pod's requests (the larger of its containers' sum and its largest init container, plus its
  overhead) against the node's ``allocatable`` less what its other pods request; and the node's ``pods`` count.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from edgeworkers.k8s.quantity import parse_quantity

# The binder parses the same few quantities ("10m", "24Gi", "110") for every pod against every node.
_quantity = functools.lru_cache(maxsize=4096, typed=True)(parse_quantity)

SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
TOO_MANY_PODS = "Too many pods"
_INSUFFICIENT = "Insufficient {}"


def _requirement_holds(requirement: dict[str, Any], value: str | None) -> bool:
    operator, values = requirement.get("operator"), requirement.get("values") or []
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def _term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    expressions, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches no node
    labels = node["metadata"].get("labels") or {}
    name = node["metadata"]["name"]
    return all(_requirement_holds(r, labels.get(r.get("key", ""))) for r in expressions) and all(
        _requirement_holds(r, name if r.get("key") == "metadata.name" else None) for r in fields)


def matches_node(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    """The pod's ``nodeSelector`` and required node affinity both hold for ``node``."""
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(key) != value for key, value in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    return any(_term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


@dataclass(frozen=True)
class Requests:
    """What a pod asks of its node: CPU in cores, memory in bytes (and any other resource by name)."""

    amounts: dict[str, Decimal]

    def __add__(self, other: Requests) -> Requests:
        return Requests({k: self.amounts.get(k, Decimal(0)) + other.amounts.get(k, Decimal(0))
                         for k in self.amounts.keys() | other.amounts.keys()})


def _container_requests(container: dict[str, Any]) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    asked = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}  # limits default requests
    return {name: _quantity(value) for name, value in asked.items()}


def _maximum(a: dict[str, Decimal], b: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: max(a.get(k, Decimal(0)), b.get(k, Decimal(0))) for k in a.keys() | b.keys()}


def pod_requests(pod: dict[str, Any]) -> Requests:
    """kube's ``resource.PodRequests``: the sum over containers, at least each init container's, plus overhead.
    Malformed quantities count as nothing (admission refused them at create)."""
    spec = pod.get("spec") or {}
    try:
        total = sum((Requests(_container_requests(c)) for c in spec.get("containers") or []), Requests({}))
        for init in spec.get("initContainers") or []:
            total = Requests(_maximum(total.amounts, _container_requests(init)))
        return total + Requests({k: _quantity(v) for k, v in (spec.get("overhead") or {}).items()})
    except (ValueError, TypeError):
        return Requests({})


def allocatable(node: dict[str, Any]) -> dict[str, Decimal]:
    try:
        return {k: _quantity(v) for k, v in ((node.get("status") or {}).get("allocatable") or {}).items()}
    except (ValueError, TypeError):
        return {}


class PlacedPods(list):
    """A node's pods (a list) and the sum of their requests, kept as pods are appended: the binder judges each pending
    pod against every node, and summing every node's pods again for each pod made a pass O(pods²) (ops/bench/fleet.py:
    15 ms per pod with 200 nodes and 2,000 pods, the event loop blocked meanwhile)."""

    def __init__(self, pods: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__()
        self.requests = Requests({})
        for pod in pods:
            self.append(pod)

    def append(self, pod: dict[str, Any]) -> None:
        super().append(pod)
        self.requests = self.requests + pod_requests(pod)


def running_on(pod: dict[str, Any]) -> str | None:
    """The node whose room ``pod`` takes: the one it is bound to, until it has Succeeded or Failed."""
    node = (pod.get("spec") or {}).get("nodeName")
    return node if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") else None


class NodeLoads(Mapping[str, PlacedPods]):
    """Each node's ``PlacedPods``, kept pod by pod from the store's events (``add`` the new object, ``remove`` the old),
    a node's made again only once one of its pods changed: the binder listed every pod at each pass, O(pods) per pass
    and O(pods²) for a fleet's workload."""

    def __init__(self, pods: Iterable[dict[str, Any]] = ()) -> None:
        self._pods: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._placed: dict[str, PlacedPods] = {}
        for pod in pods:
            self.add(pod)

    def add(self, pod: dict[str, Any]) -> None:
        if node := running_on(pod):
            self._pods.setdefault(node, {})[_key(pod)] = pod
            self._placed.pop(node, None)

    def remove(self, pod: dict[str, Any]) -> None:
        if (node := running_on(pod)) and node in self._pods:
            self._pods[node].pop(_key(pod), None)
            self._placed.pop(node, None)

    def __getitem__(self, node: str) -> PlacedPods:
        placed = self._placed.get(node)
        if placed is None:
            placed = self._placed[node] = PlacedPods(self._pods[node].values())  # KeyError: no pod there yet
        return placed

    def __iter__(self) -> Iterator[str]:
        return iter(self._pods)

    def __len__(self) -> int:
        return len(self._pods)


def _key(pod: dict[str, Any]) -> tuple[str, str]:
    return pod["metadata"].get("namespace", ""), pod["metadata"]["name"]


def insufficient(asked: Requests, node: dict[str, Any], placed: Iterable[dict[str, Any]]) -> list[str]:
    """Why a pod asking ``asked`` (its ``pod_requests``) does not fit beside the ``placed`` pods of ``node`` (kube's
    messages), or nothing.

    A node that reports no allocatable (not yet registered fully) is not judged on resources."""
    free = allocatable(node)
    if not free:
        return []
    placed = placed if isinstance(placed, PlacedPods) else PlacedPods(placed)
    used = placed.requests
    reasons = []
    if "pods" in free and len(placed) + 1 > free["pods"]:
        reasons.append(TOO_MANY_PODS)
    for name, amount in sorted(asked.amounts.items()):
        if amount > 0 and name in free and used.amounts.get(name, Decimal(0)) + amount > free[name]:
            reasons.append(_INSUFFICIENT.format(name))
    return reasons
