"""``metrics.k8s.io/v1beta1``, as metrics-server serves it (``kubectl top node``, ``kubectl top pod``), from the usage
each node reports.

Reads: ``nodes`` and ``pods`` (NodeMetrics, PodMetrics: ``timestamp``, ``window``, ``usage`` with ``cpu`` in cores
and ``memory`` in bytes, per container for pods), lists and gets, with label selectors on the objects' labels.

The one write is edgeworkers' own (metrics-server scrapes kubelets; here the nodes push through their status
outbox): ``PUT /apis/metrics.k8s.io/v1beta1/nodes/<node>`` with the node's report (``scheduler/usage.py``). The Node
authorizer lets a node update only its own (``nodes``, verb ``update``, its name), and a report keeps only the pods
bound to that node. Reports live in memory, never on disk, and expire after ``EXPIRY_S``, as metrics-server forgets
a node it cannot scrape.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from edgeworkers.cloud import wire
from edgeworkers.cloud.auth import identity_of
from edgeworkers.cloud.authorizer import Attributes, authorize, verb_of
from edgeworkers.cloud.errors import route_not_found
from edgeworkers.cloud.selectors import parse_label_selector
from edgeworkers.cloud.store import Store
from edgeworkers.k8s import status
from edgeworkers.k8s.quantity import canonical_quantity

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
EXPIRY_S = 300.0


def cpu(nanocores: int) -> str:
    """CPU as metrics-server writes it: nanocores in canonical form (``12m``, ``1234567n``, ``2``)."""
    return canonical_quantity(f"{max(0, int(nanocores))}n")


def memory(size: int) -> str:
    """Memory as metrics-server writes it (BinarySI): ``3456Ki``, ``12Mi``, or plain bytes when not a multiple."""
    size = max(0, int(size))
    return canonical_quantity(f"{size // 1024}Ki") if size >= 1024 and size % 1024 == 0 else str(size)


def window(seconds: float) -> str:
    """A Go duration string, as metav1.Duration serialises: ``15s``, ``15.002s``."""
    return f"{round(seconds, 3):g}s"


@dataclass(frozen=True)
class Report:
    received: float  # monotonic
    body: dict[str, Any]


class MetricsApi:
    def __init__(self, store: Store, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._monotonic = monotonic
        self._reports: dict[str, Report] = {}

    # -- the write ------------------------------------------------------------------------------

    def put(self, node: str, report: dict[str, Any]) -> None:
        """Keep ``node``'s report; pods not bound to ``node`` are dropped from it."""
        if not isinstance(report, dict) or not isinstance(report.get("node"), dict):
            raise status.bad_request("a usage report must be an object with node usage")
        try:
            bound = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self._store.list("pods")
                     if (p.get("spec") or {}).get("nodeName") == node}
            pods = [p for p in report.get("pods") or [] if (p["namespace"], p["name"]) in bound]
            body = {
                "timestamp": str(report["timestamp"]),
                "window": window(float(report["windowSeconds"])),
                "node": {"cpu": cpu(report["node"]["cpu"]), "memory": memory(report["node"]["memory"])},
                "pods": [{"namespace": p["namespace"], "name": p["name"],
                          "window": window(float(p.get("windowSeconds", report["windowSeconds"]))), "containers": [
                    {"name": str(c["name"]), "usage": {"cpu": cpu(c["cpu"]), "memory": memory(c["memory"])}}
                    for c in p["containers"]]} for p in pods],
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise status.bad_request(f"malformed usage report: {exc!r}") from exc
        self._reports[node] = Report(self._monotonic(), body)

    # -- the reads ------------------------------------------------------------------------------

    def _fresh(self) -> dict[str, dict[str, Any]]:
        now = self._monotonic()
        for node in [n for n, r in self._reports.items() if now - r.received > EXPIRY_S]:
            del self._reports[node]
        return {node: report.body for node, report in self._reports.items()}

    def node_metrics(self, name: str) -> dict[str, Any] | None:
        report = self._fresh().get(name)
        node = self._store.find("nodes", "", name)
        if report is None or node is None:
            return None
        return {"metadata": _meta(node), "timestamp": report["timestamp"], "window": report["window"],
                "usage": report["node"]}

    def pod_metrics(self) -> list[dict[str, Any]]:
        items = []
        for report in self._fresh().values():
            for entry in report["pods"]:
                pod = self._store.find("pods", entry["namespace"], entry["name"])
                if pod is not None:
                    items.append({"metadata": _meta(pod), "timestamp": report["timestamp"],
                                  "window": entry["window"], "containers": entry["containers"]})
        return sorted(items, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))

    # -- HTTP -----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        parts = [p for p in request.match_info["path"].split("/") if p]
        namespace = None
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] == "pods":
            namespace, parts = parts[1], parts[2:]
        if not parts or parts[0] not in ("nodes", "pods") or len(parts) > 2 or \
                (parts[0] == "nodes" and namespace is not None):
            raise route_not_found()
        resource, name = parts[0], (parts[1] if len(parts) == 2 else None)
        verb = verb_of(request.method, name, False)
        authorize(identity_of(request), Attributes(verb, resource, None, namespace, name, GROUP), self._store)
        if request.method == "PUT" and resource == "nodes" and name is not None:
            self.put(name, wire.decode_json(await request.read()))
            return wire.json_response(status.status_success())
        if request.method != "GET":
            raise status.method_not_allowed(resource, request.method, GROUP)
        kind = "NodeMetrics" if resource == "nodes" else "PodMetrics"
        if resource == "nodes":
            items = [m for n in sorted(self._reports) if (m := self.node_metrics(n)) is not None]
        else:
            items = [m for m in self.pod_metrics() if namespace is None or m["metadata"]["namespace"] == namespace]
        if name is not None:
            found = next((m for m in items if m["metadata"]["name"] == name), None)
            if found is None:
                raise status.not_found(f"{resource[:-1]}metrics", name, GROUP)
            return wire.json_response({"kind": kind, "apiVersion": GROUP_VERSION, **found})
        selector = request.query.get("labelSelector")
        if selector:
            try:
                matches = parse_label_selector(selector)
            except ValueError as exc:
                raise status.bad_request(str(exc)) from exc
            items = [m for m in items if matches.matches(m["metadata"].get("labels") or {})]
        return wire.json_response({"kind": f"{kind}List", "apiVersion": GROUP_VERSION,
                                   "metadata": {}, "items": [{"kind": kind, "apiVersion": GROUP_VERSION, **m}
                                                              for m in items]})


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    out = {"name": meta["name"], "creationTimestamp": meta.get("creationTimestamp")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    if meta.get("labels"):
        out["labels"] = meta["labels"]
    return out
