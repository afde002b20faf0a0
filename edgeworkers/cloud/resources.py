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
    scalable: bool = False  # a /scale subresource (autoscaling/v1 Scale of ``spec.replicas``)

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
    Resource("replicationcontrollers", "ReplicationController", "v1", True, True, scalable=True),
    Resource("services", "Service", "v1", True, True),
    Resource("endpoints", "Endpoints", "v1", True, False),
    Resource("deployments", "Deployment", "apps/v1", True, True, scalable=True),
    Resource("replicasets", "ReplicaSet", "apps/v1", True, True, scalable=True),
    Resource("daemonsets", "DaemonSet", "apps/v1", True, True),
    Resource("controllerrevisions", "ControllerRevision", "apps/v1", True, False),
    Resource("jobs", "Job", "batch/v1", True, True),
    Resource("endpointslices", "EndpointSlice", "discovery.k8s.io/v1", True, False),
)}


def served_at(api_version: str) -> tuple[str, ...]:
    """The resources of one group-version ("v1", "apps/v1"), as its URL prefix dispatches them."""
    return tuple(r.name for r in RESOURCES.values() if r.api_version == api_version)


API_VERSIONS = tuple(dict.fromkeys(r.api_version for r in RESOURCES.values()))

SEED_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")
