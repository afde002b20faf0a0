"""What an identity may do: kube's Node authorizer plus the NodeRestriction admission plugin, for nodes.

The administrator (``system:masters``) may do anything. A node (``system:node:<name>`` in ``system:nodes``) may do
what a kubelet needs and nothing more:

- pods: get, list, watch any (``pods/status`` too); create only its own mirror pods (NodeRestriction: bound to
  itself, annotated ``kubernetes.io/config.mirror``, referencing no configmap or secret); delete only pods bound to
  itself (the deletion's confirmation); update and patch ``pods/status`` only of pods bound to itself;
- configmaps and secrets: get only those a pod bound to itself references (the Node authorizer's graph);
- nodes: get, list, watch any; create, update and patch (``nodes/status`` too) only its own Node, with no label
  outside the kubelet's set (NodeRestriction) and without changing its taints;
- leases: get, create, update, patch, delete only its own Lease in ``kube-node-lease``;
- events: create, update, patch;
- selfsubjectreviews (who am I): create, as any authenticated identity; tokenreviews: nothing.

``pods/exec``, ``pods/attach`` and ``pods/portforward`` are authorized as ``create`` whatever the request's method:
a WebSocket upgrade is a GET, and kube-apiserver requires ``create`` for it as for the POST of SPDY (its
``AuthorizePodWebsocketUpgradeCreatePermission``); a node may none of them.

Anything else is 403 in kube-apiserver's words (``User "system:node:edge-1" cannot get resource "secrets" in API
group "" in the namespace "default": ...``). Two steps, as in kube: ``authorize`` sees the request's attributes
(and the stored objects it names); ``admit`` sees the object a create or update would store.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from edgeworkers.cloud.auth import Identity
from edgeworkers.k8s import status
from edgeworkers.k8s.references import CONFIGMAP, SECRET, references

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
NODE_LEASE_NAMESPACE = "kube-node-lease"
NO_RELATIONSHIP = "no relationship found between node '{node}' and this object"
CONNECT_SUBRESOURCES = ("exec", "attach", "portforward")  # pods/<sub>: authorized as create, whatever the method


class Objects(Protocol):
    def find(self, resource: str, namespace: str, name: str) -> dict | None: ...
    def list(self, resource: str, namespace: str | None = None) -> list[dict]: ...


@dataclass(frozen=True)
class Attributes:
    """A request as an authorizer sees it (kube's ``authorizer.Attributes``)."""
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    resource: str
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    group: str = ""

    def describe(self, user: str) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        return f'User "{user}" cannot {self.verb} resource "{resource}" in API group "{self.group}" {where}'


def verb_of(method: str, name: str | None, watch: bool) -> str:
    """The authorization verb of an HTTP request, as kube's RequestInfoFactory derives it."""
    if method in ("GET", "HEAD"):
        if name is not None:
            return "get"
        return "watch" if watch else "list"
    if method == "DELETE":
        return "delete" if name is not None else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def forbidden(identity: Identity, attrs: Attributes, reason: str) -> status.APIError:
    """kube's 403 for a request; without a ``reason`` (no authorizer had an opinion), the refusal alone."""
    message = f"{attrs.describe(identity.user)}: {reason}" if reason else attrs.describe(identity.user)
    return status.forbidden(attrs.resource, attrs.name or "", message, attrs.group)


def authorize(identity: Identity, attrs: Attributes, objects: Objects) -> None:
    """Raise 403 unless ``identity`` may make the request ``attrs`` describes."""
    if attrs.group == "authentication.k8s.io" and attrs.resource == "selfsubjectreviews" and attrs.verb == "create":
        return  # kube's system:basic-user role: every authenticated identity may ask who it is
    if attrs.resource == "pods" and attrs.subresource in CONNECT_SUBRESOURCES:
        attrs = replace(attrs, verb="create")
    node = identity.node
    if node is None:
        if "system:masters" in identity.groups:
            return
        raise forbidden(identity, attrs, "no rule allows it")
    reason = _node_decision(node, attrs, objects)
    if reason is not None:
        raise forbidden(identity, attrs, reason)


def _node_decision(node: str, a: Attributes, objects: Objects) -> str | None:
    """None when node ``node`` may make the request, else why not."""
    verb, sub = a.verb, a.subresource
    if a.resource == "pods":
        if (sub is None and verb in ("get", "list", "watch", "create")) or (sub == "status" and verb == "get"):
            return None  # a created pod is checked by admission: only its own mirror pods
        if (sub is None and verb == "delete") or (sub == "status" and verb in ("update", "patch")):
            pod = objects.find("pods", a.namespace or "", a.name or "")
            if pod is None:
                return None  # the request answers 404, telling nothing a node could not list
            if _bound_to(pod) != node:
                return f"node '{node}' can only {verb} pods with spec.nodeName set to itself"
            return None
        return f"node '{node}' cannot {verb} pods{'/' + sub if sub else ''}"
    if a.resource in ("configmaps", "secrets"):
        if verb == "get" and sub is None and a.name and _referenced(node, a, objects):
            return None
        return NO_RELATIONSHIP.format(node=node)
    if a.resource == "nodes":
        if verb in ("get", "list", "watch") and sub is None:
            return None
        if verb == "create" and sub is None:
            return None  # admission checks the name
        if verb in ("update", "patch") and sub in (None, "status"):
            return None if a.name == node else f"node '{node}' can only modify its own Node"
        return f"node '{node}' cannot {verb} nodes"
    if a.resource == "leases":
        if a.namespace != NODE_LEASE_NAMESPACE:
            return f"node '{node}' can only access leases in the {NODE_LEASE_NAMESPACE} namespace"
        if verb == "create":
            return None  # admission checks the name
        if verb in ("get", "update", "patch", "delete") and a.name == node:
            return None
        return f"node '{node}' can only access its own Lease"
    if a.resource == "events" and verb in ("create", "update", "patch"):
        return None
    if a.group == "authentication.k8s.io":
        return ""  # no rule for nodes (kube's allows kubelets tokenreviews, which no node here needs)
    return NO_RELATIONSHIP.format(node=node)


def _bound_to(pod: dict) -> str | None:
    return (pod.get("spec") or {}).get("nodeName") or None


def _referenced(node: str, a: Attributes, objects: Objects) -> bool:
    wanted = (CONFIGMAP if a.resource == "configmaps" else SECRET, a.namespace or "", a.name)
    return any(_bound_to(pod) == node and wanted in references(pod) for pod in objects.list("pods", a.namespace))


def admit(identity: Identity, attrs: Attributes, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """NodeRestriction: raise 403 unless a node's create or update stores what it may."""
    node = identity.node
    if node is None:
        return
    reason = _node_admission(node, attrs, new, old)
    if reason is not None:
        name = (new.get("metadata") or {}).get("name") or attrs.name or ""
        raise status.forbidden(attrs.resource, name, reason, attrs.group)


def _node_admission(node: str, a: Attributes, new: dict[str, Any], old: dict[str, Any] | None) -> str | None:
    meta = new.get("metadata") or {}
    if a.resource == "pods" and old is None:
        if MIRROR_ANNOTATION not in (meta.get("annotations") or {}):
            return f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can only create mirror pods'
        if _bound_to(new) != node:
            return f'node "{node}" can only create pods with spec.nodeName set to itself'
        if references(new):
            return f'node "{node}" can not create pods that reference configmaps or secrets'
        return None
    if a.resource == "pods" and old is not None:
        if a.subresource != "status" or _bound_to(old) != node or _bound_to(new) != node:
            return f'node "{node}" can only update the status of pods with spec.nodeName set to itself'
        return None
    if a.resource == "nodes":
        if meta.get("name") != node:
            return f'node "{node}" is not allowed to modify node "{meta.get("name")}"'
        return _node_object_admission(node, new, old)
    if a.resource == "leases":
        if meta.get("name") != node or meta.get("namespace") != NODE_LEASE_NAMESPACE:
            return 'can only access node lease with the same name as the requesting node'
        return None
    return None


# Labels a kubelet may set on its own Node (kube's kubeletapis.IsKubeletLabel), plus KubeEdge's edge role.
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone", "topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    # Not a kubelet label in kube (a node must not steer workloads to itself by role); every node of this cloud is
    # an edge node, so claiming the role gains a node nothing, and KubeEdge's nodes carry it.
    "node-role.kubernetes.io/edge",
})  # fmt: skip
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"


def _under(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def forbidden_node_labels(labels: set[str]) -> list[str]:
    """Of ``labels`` a node sets or changes, those NodeRestriction refuses: any under node-restriction.kubernetes.io,
    and any other kubernetes.io or k8s.io label that is not a kubelet's (kube's ``getForbiddenLabels``)."""
    refused = []
    for label in labels:
        namespace = label.rpartition("/")[0]
        if _under(namespace, NODE_RESTRICTION_NAMESPACE):
            refused.append(label)
        elif (_under(namespace, "kubernetes.io") or _under(namespace, "k8s.io")) and not (
                label in KUBELET_LABELS or any(_under(namespace, ns) for ns in KUBELET_LABEL_NAMESPACES)):
            refused.append(label)
    return sorted(refused)


def _node_object_admission(node: str, new: dict[str, Any], old: dict[str, Any] | None) -> str | None:
    """kube's NodeRestriction for a node's own Node: labels outside the kubelet's set neither set at registration nor
    changed later, and its taints never changed by the node (the cloud's taints are the cloud's to lift)."""
    labels = (new.get("metadata") or {}).get("labels") or {}
    if old is None:
        if refused := forbidden_node_labels(set(labels)):
            return f'node "{node}" is not allowed to set the following labels: {", ".join(refused)}'
        return None
    if ((new.get("spec") or {}).get("taints") or []) != ((old.get("spec") or {}).get("taints") or []):
        return f'node "{node}" is not allowed to modify taints'
    old_labels = (old.get("metadata") or {}).get("labels") or {}
    changed = {k for k in labels.keys() | old_labels.keys() if labels.get(k) != old_labels.get(k)}
    if refused := forbidden_node_labels(changed):
        return f'node "{node}" is not allowed to modify labels: {", ".join(refused)}'
    return None
