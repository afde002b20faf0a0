"""The resources this API serves: their kind, group/version, scope and subresources."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    name: str          # plural, as in URLs: "pods"
    kind: str          # "Pod"
    api_version: str   # "v1", "coordination.k8s.io/v1"
    namespaced: bool
    has_status: bool   # a /status subresource: the main endpoint ignores status, /status ignores the rest

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("pods", "Pod", "v1", True, True),
    Resource("configmaps", "ConfigMap", "v1", True, False),
    Resource("secrets", "Secret", "v1", True, False),
    Resource("events", "Event", "v1", True, False),
    Resource("nodes", "Node", "v1", False, True),
    Resource("namespaces", "Namespace", "v1", False, True),
    Resource("leases", "Lease", "coordination.k8s.io/v1", True, False),
    Resource("serviceaccounts", "ServiceAccount", "v1", True, False),
)}

CORE_RESOURCES = ("pods", "configmaps", "secrets", "events", "nodes", "namespaces", "serviceaccounts")
COORDINATION_RESOURCES = ("leases",)

SEED_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")
