"""Discovery documents: what `/version`, `/api`, `/apis`, `/apis/<group>` and each group-version answer.

kubectl reads these before anything else (and caches them); `/apis` answering 404 is fatal for it. The plain shapes
are `APIVersions`, `APIGroupList`, `APIGroup` and `APIResourceList`; `/api` and `/apis` also answer the aggregated
`APIGroupDiscoveryList` (apidiscovery.k8s.io v2, or v2beta1) to a client whose Accept header asks for it first, as
kubectl 1.32 does. Every document is built from ``SERVED``, so each lists exactly what is served.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass

GIT_VERSION = "v1.32.0"
COORDINATION_GROUP = "coordination.k8s.io"
AUTHENTICATION_GROUP = "authentication.k8s.io"
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
    group_version: tuple[str, str] | None = None  # a subresource served as another group's kind (autoscaling/v1 Scale)

    def to_json(self) -> dict:
        other = {"group": self.group_version[0], "version": self.group_version[1]} if self.group_version else {}
        return {"name": self.name, "singularName": self.singular, "namespaced": self.namespaced, **other,
                "kind": self.kind, "verbs": list(self.verbs), **self.names()}

    def names(self) -> dict:
        """Its short names and categories, the fields left out when empty."""
        out = {"shortNames": list(self.short_names), "categories": list(self.categories)}
        return {key: value for key, value in out.items() if value}


def _scalable(name: str, kind: str, singular: str, short: tuple[str, ...]) -> tuple[Resource, ...]:
    """A workload with its /scale (an autoscaling/v1 Scale) and /status subresources, in the category ``all``."""
    return (Resource(name, kind, True, tuple(_NAMESPACED), singular, short, ("all",)),
            Resource(f"{name}/scale", "Scale", True, tuple(_SUBRESOURCE), group_version=("autoscaling", "v1")),
            Resource(f"{name}/status", kind, True, tuple(_SUBRESOURCE)))


CORE_V1: tuple[Resource, ...] = (
    Resource("configmaps", "ConfigMap", True, tuple(_NAMESPACED), "configmap", ("cm",)),
    Resource("endpoints", "Endpoints", True, tuple(_NAMESPACED), "endpoints", ("ep",)),
    Resource("events", "Event", True, tuple(_NAMESPACED), "event", ("ev",)),
    Resource("namespaces", "Namespace", False, tuple(_CRUD), "namespace", ("ns",)),
    Resource("namespaces/status", "Namespace", False, tuple(_SUBRESOURCE)),
    Resource("nodes", "Node", False, tuple(_CRUD), "node", ("no",)),
    Resource("nodes/status", "Node", False, tuple(_SUBRESOURCE)),
    Resource("pods", "Pod", True, tuple(_NAMESPACED), "pod", ("po",), ("all",)),
    Resource("pods/attach", "PodAttachOptions", True, ("create", "get")),
    Resource("pods/binding", "Binding", True, ("create",)),
    Resource("pods/ephemeralcontainers", "Pod", True, ("get", "patch", "update")),
    Resource("pods/exec", "PodExecOptions", True, ("create", "get")),
    Resource("pods/log", "Pod", True, ("get",)),
    Resource("pods/portforward", "PodPortForwardOptions", True, ("create", "get")),
    Resource("pods/status", "Pod", True, tuple(_SUBRESOURCE)),
    *_scalable("replicationcontrollers", "ReplicationController", "replicationcontroller", ("rc",)),
    Resource("secrets", "Secret", True, tuple(_NAMESPACED), "secret"),
    Resource("serviceaccounts", "ServiceAccount", True, tuple(_NAMESPACED), "serviceaccount", ("sa",)),
    Resource("services", "Service", True, tuple(_NAMESPACED), "service", ("svc",), ("all",)),
    Resource("services/status", "Service", True, tuple(_SUBRESOURCE)),
)

APPS_V1: tuple[Resource, ...] = (
    Resource("controllerrevisions", "ControllerRevision", True, tuple(_NAMESPACED), "controllerrevision"),
    Resource("daemonsets", "DaemonSet", True, tuple(_NAMESPACED), "daemonset", ("ds",), ("all",)),
    Resource("daemonsets/status", "DaemonSet", True, tuple(_SUBRESOURCE)),
    *_scalable("deployments", "Deployment", "deployment", ("deploy",)),
    *_scalable("replicasets", "ReplicaSet", "replicaset", ("rs",)),
)

BATCH_V1: tuple[Resource, ...] = (
    Resource("jobs", "Job", True, tuple(_NAMESPACED), "job", (), ("all",)),
    Resource("jobs/status", "Job", True, tuple(_SUBRESOURCE)),
)

DISCOVERY_V1: tuple[Resource, ...] = (
    Resource("endpointslices", "EndpointSlice", True, tuple(_NAMESPACED), "endpointslice"),
)

COORDINATION_V1: tuple[Resource, ...] = (
    Resource("leases", "Lease", True, tuple(_NAMESPACED), "lease"),
)

# Create-only, as kube serves them (edgeworkers/cloud/reviews.py): who a request's or a token's identity is.
AUTHENTICATION_V1: tuple[Resource, ...] = (
    Resource("selfsubjectreviews", "SelfSubjectReview", False, ("create",), "selfsubjectreview"),
    Resource("tokenreviews", "TokenReview", False, ("create",), "tokenreview"),
)

METRICS_V1BETA1: tuple[Resource, ...] = (
    Resource("nodes", "NodeMetrics", False, ("get", "list")),
    Resource("pods", "PodMetrics", True, ("get", "list")),
)


@dataclass(frozen=True)
class GroupVersion:
    """One served group-version and its resources; each group is served at one version."""

    group: str  # "" is the core group, served under /api
    version: str
    resources: tuple[Resource, ...]

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """Its URL path without the leading slash: ``api/v1``, ``apis/coordination.k8s.io/v1``."""
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"


CORE = GroupVersion("", "v1", CORE_V1)
# Everything this server serves, and so everything discovery and OpenAPI list.
SERVED: tuple[GroupVersion, ...] = (
    CORE,
    GroupVersion("apps", "v1", APPS_V1),
    GroupVersion("batch", "v1", BATCH_V1),
    GroupVersion(COORDINATION_GROUP, "v1", COORDINATION_V1),
    GroupVersion("discovery.k8s.io", "v1", DISCOVERY_V1),
    GroupVersion(AUTHENTICATION_GROUP, "v1", AUTHENTICATION_V1),
    GroupVersion(METRICS_GROUP, "v1beta1", METRICS_V1BETA1),
)
NAMED_GROUPS = {gv.group: gv for gv in SERVED if gv.group}


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
    served = NAMED_GROUPS.get(name)
    if served is None:
        return None
    gv = {"groupVersion": served.group_version, "version": served.version}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> dict:
    """`GET /apis`: every named group (the core group is served under `/api` instead)."""
    groups = []
    for name in NAMED_GROUPS:
        group = api_group(name) or {}
        del group["kind"], group["apiVersion"]
        groups.append(group)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(path: str) -> dict | None:
    """`GET /api/v1`, `GET /apis/<group>/<version>`: an APIResourceList (``path`` without its slashes), or None."""
    for served in SERVED:
        if served.path == path:
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": served.group_version,
                "resources": [r.to_json() for r in served.resources],
            }
    return None


AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
AGGREGATED_VERSIONS = ("v2", "v2beta1")


def aggregated_version(accept: str) -> str | None:
    """The apidiscovery version (``v2``, ``v2beta1``) an Accept header asks for before any plain JSON, or None."""
    for media_range in accept.split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        options = dict(param.partition("=")[::2] for param in params)
        if options.get("as") == "APIGroupDiscoveryList" and options.get("g") == "apidiscovery.k8s.io" and \
                kind == "application/json" and options.get("v") in AGGREGATED_VERSIONS:
            return options["v"]
        if kind in ("application/json", "application/*", "*/*") and "as" not in options:
            return None
    return None


def _resource_discovery(served: GroupVersion, resource: Resource, subresources: list[Resource]) -> dict:
    out: dict = {
        "resource": resource.name,
        "responseKind": {"group": served.group, "version": served.version, "kind": resource.kind},
        "scope": "Namespaced" if resource.namespaced else "Cluster",
        "singularResource": resource.singular,
        "verbs": list(resource.verbs),
        **resource.names(),
    }
    if subresources:
        out["subresources"] = [{
            "subresource": sub.name.partition("/")[2],
            "responseKind": {"group": (sub.group_version or (served.group,))[0],
                             "version": (sub.group_version or ("", served.version))[1], "kind": sub.kind},
            "verbs": list(sub.verbs),
        } for sub in subresources]
    return out


def aggregated(core: bool, version: str) -> dict:
    """`GET /api` (``core``) or `GET /apis` as an APIGroupDiscoveryList of apidiscovery ``version``."""
    items = []
    for served in SERVED:
        if (served.group == "") != core:
            continue
        resources = [r for r in served.resources if "/" not in r.name]
        items.append({
            "metadata": {"name": served.group, "creationTimestamp": None} if served.group else
            {"creationTimestamp": None},
            "versions": [{
                "version": served.version,
                "resources": [_resource_discovery(served, r, [s for s in served.resources
                                                              if s.name.startswith(r.name + "/")])
                              for r in resources],
                "freshness": "Current",
            }],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}
