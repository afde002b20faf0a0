"""Discovery documents: what `/version`, `/api`, `/apis` and `/api/v1` answer.

kubectl reads these before anything else (and caches them); `/apis` answering 404 is fatal for it.
The shapes are the plain (non-aggregated) `APIVersions`, `APIGroupList`, `APIGroup` and `APIResourceList`.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass

GIT_VERSION = "v1.32.0"
COORDINATION_GROUP = "coordination.k8s.io"
METRICS_GROUP = "metrics.k8s.io"  # served at v1beta1, as metrics-server does (edgeworkers/cloud/metrics_api.py)

_CRUD = ["create", "delete", "get", "list", "patch", "update", "watch"]
_NAMESPACED = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_SUBRESOURCE = ["get", "patch", "update"]
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Resource:
    """One entry of an APIResourceList."""

    name: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def to_json(self) -> dict:
        out: dict = {
            "name": self.name,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        if self.categories:
            out["categories"] = list(self.categories)
        return out


CORE_V1: tuple[Resource, ...] = (
    Resource("configmaps", "ConfigMap", True, tuple(_NAMESPACED), "configmap", ("cm",)),
    Resource("events", "Event", True, tuple(_NAMESPACED), "event", ("ev",)),
    Resource("namespaces", "Namespace", False, tuple(_CRUD), "namespace", ("ns",)),
    Resource("namespaces/status", "Namespace", False, tuple(_SUBRESOURCE)),
    Resource("nodes", "Node", False, tuple(_CRUD), "node", ("no",)),
    Resource("nodes/status", "Node", False, tuple(_SUBRESOURCE)),
    Resource("pods", "Pod", True, tuple(_NAMESPACED), "pod", ("po",), ("all",)),
    Resource("pods/binding", "Binding", True, ("create",)),
    Resource("pods/exec", "PodExecOptions", True, ("create", "get")),
    Resource("pods/log", "Pod", True, ("get",)),
    Resource("pods/portforward", "PodPortForwardOptions", True, ("create", "get")),
    Resource("pods/status", "Pod", True, tuple(_SUBRESOURCE)),
    Resource("secrets", "Secret", True, tuple(_NAMESPACED), "secret"),
    Resource("serviceaccounts", "ServiceAccount", True, tuple(_NAMESPACED), "serviceaccount", ("sa",)),
)

COORDINATION_V1: tuple[Resource, ...] = (
    Resource("leases", "Lease", True, tuple(_NAMESPACED), "lease"),
)

# group name -> resources of its single served version (v1); "" is the core group.
GROUPS: dict[str, tuple[Resource, ...]] = {"": CORE_V1, COORDINATION_GROUP: COORDINATION_V1}
METRICS_V1BETA1 = (Resource("nodes", "NodeMetrics", False, ("get", "list")),
                   Resource("pods", "PodMetrics", True, ("get", "list")))
VERSIONS = {METRICS_GROUP: "v1beta1"}  # groups served at another version than v1, read-only (outside GROUPS' OpenAPI)


def version() -> dict:
    """The `/version` document (version.Info) of the Kubernetes release this API imitates."""
    arch = _ARCH.get(platform.machine(), platform.machine())
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": f"linux/{arch}",
    }


def api_versions(server_address: str) -> dict:
    """`GET /api`: the core group's versions and the address clients should use."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(name: str) -> dict | None:
    """`GET /apis/<name>`: an APIGroup, or None for a group this server does not serve."""
    if not name or name not in (*GROUPS, *VERSIONS):
        return None
    gv = {"groupVersion": f"{name}/{VERSIONS.get(name, 'v1')}", "version": VERSIONS.get(name, "v1")}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> dict:
    """`GET /apis`: every named group (the core group is served under `/api` instead)."""
    groups = []
    for name in (*GROUPS, *VERSIONS):
        group = api_group(name)
        if group is not None:
            del group["kind"], group["apiVersion"]
            groups.append(group)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _resource_list(group_version: str, resources: tuple[Resource, ...]) -> dict:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [r.to_json() for r in resources],
    }


def core_v1_resources() -> dict:
    """`GET /api/v1`."""
    return _resource_list("v1", CORE_V1)


def coordination_v1_resources() -> dict:
    """`GET /apis/coordination.k8s.io/v1`."""
    return _resource_list(f"{COORDINATION_GROUP}/v1", COORDINATION_V1)


def metrics_v1beta1_resources() -> dict:
    """`GET /apis/metrics.k8s.io/v1beta1`."""
    return _resource_list(f"{METRICS_GROUP}/v1beta1", METRICS_V1BETA1)
