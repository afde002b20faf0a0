"""The Node authorizer and NodeRestriction, from tables: what node edge-1 may do, and the administrator everything."""
from __future__ import annotations

import pytest

from edgeworkers.cloud.auth import ADMIN, Identity, node_identity
from edgeworkers.cloud.authorizer import Attributes, admit, authorize, verb_of
from edgeworkers.k8s import status

NODE = node_identity("edge-1")


class Objects:
    def __init__(self, *pods: dict) -> None:
        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}

    def find(self, resource: str, namespace: str, name: str) -> dict | None:
        return self.pods.get((namespace, name)) if resource == "pods" else None

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        return [p for (ns, _), p in self.pods.items() if namespace is None or ns == namespace] \
            if resource == "pods" else []


def pod(name: str, node: str | None, **spec) -> dict:
    body = {"containers": [{"name": "c", "image": "busybox"}], **spec}
    if node:
        body["nodeName"] = node
    return {"metadata": {"name": name, "namespace": "default"}, "spec": body}


OBJECTS = Objects(
    pod("mine", "edge-1", volumes=[{"name": "v", "secret": {"secretName": "my-secret"}}],
        imagePullSecrets=[{"name": "pull"}]),
    pod("theirs", "edge-2", volumes=[{"name": "v", "configMap": {"name": "their-config"}}]),
    pod("unbound", None, volumes=[{"name": "v", "configMap": {"name": "unbound-config"}}]),
    pod("env", "edge-1", containers=[{"name": "c", "image": "b", "envFrom": [{"configMapRef": {"name": "my-config"}}]}]),
)


def attrs(verb: str, resource: str, name: str | None = None, namespace: str | None = "default",
          sub: str | None = None) -> Attributes:
    group = "coordination.k8s.io" if resource == "leases" else ""
    return Attributes(verb, resource, sub, namespace, name, group)


ALLOWED = [
    attrs("get", "pods", "theirs"), attrs("list", "pods"), attrs("watch", "pods"), attrs("list", "pods", namespace=None),
    attrs("create", "pods"),  # admission decides
    attrs("delete", "pods", "mine"), attrs("patch", "pods", "mine", sub="status"),
    attrs("update", "pods", "mine", sub="status"), attrs("get", "pods", "theirs", sub="status"),
    attrs("delete", "pods", "gone"),  # 404 follows
    attrs("get", "secrets", "my-secret"), attrs("get", "secrets", "pull"), attrs("get", "configmaps", "my-config"),
    attrs("get", "nodes", "edge-2", None), attrs("list", "nodes", namespace=None), attrs("watch", "nodes", namespace=None),
    attrs("create", "nodes", namespace=None), attrs("patch", "nodes", "edge-1", None),
    attrs("patch", "nodes", "edge-1", None, "status"), attrs("update", "nodes", "edge-1", None, "status"),
    attrs("get", "leases", "edge-1", "kube-node-lease"), attrs("update", "leases", "edge-1", "kube-node-lease"),
    attrs("create", "leases", namespace="kube-node-lease"),
    attrs("create", "events"), attrs("patch", "events", "e1"),
]

DENIED = [
    (attrs("get", "secrets", "their-secret"), "no relationship found between node 'edge-1' and this object"),
    (attrs("get", "configmaps", "their-config"), "no relationship"),
    (attrs("get", "configmaps", "unbound-config"), "no relationship"),
    (attrs("list", "secrets"), "no relationship"),
    (attrs("watch", "configmaps"), "no relationship"),
    (attrs("get", "secrets", "my-secret", "other"), "no relationship"),
    (attrs("patch", "pods", "theirs", sub="status"), "can only patch pods with spec.nodeName set to itself"),
    (attrs("patch", "pods", "unbound", sub="status"), "spec.nodeName set to itself"),
    (attrs("delete", "pods", "theirs"), "can only delete pods with spec.nodeName set to itself"),
    (attrs("patch", "pods", "mine"), "cannot patch pods"),
    (attrs("update", "pods", "mine"), "cannot update pods"),
    (attrs("deletecollection", "pods"), "cannot deletecollection pods"),
    (attrs("get", "pods", "mine", sub="log"), "cannot get pods/log"),
    (attrs("create", "pods", "mine", sub="binding"), "cannot create pods/binding"),
    (attrs("patch", "nodes", "edge-2", None), "can only modify its own Node"),
    (attrs("patch", "nodes", "edge-2", None, "status"), "can only modify its own Node"),
    (attrs("delete", "nodes", "edge-1", None), "cannot delete nodes"),
    (attrs("update", "leases", "edge-2", "kube-node-lease"), "its own Lease"),
    (attrs("get", "leases", "edge-1", "default"), "kube-node-lease"),
    (attrs("list", "leases", namespace="kube-node-lease"), "its own Lease"),
    (attrs("get", "namespaces", "default", None), "no relationship"),
    (attrs("delete", "namespaces", "default", None), "no relationship"),
    (attrs("list", "events"), "no relationship"),
]


def ident(a: object) -> str:
    return f"{a.verb}-{a.resource}-{a.subresource}-{a.name}" if isinstance(a, Attributes) else ""


@pytest.mark.parametrize("request_attrs", ALLOWED, ids=ident)
def test_a_node_may_do_what_a_kubelet_needs(request_attrs: Attributes) -> None:
    authorize(NODE, request_attrs, OBJECTS)


@pytest.mark.parametrize(("request_attrs", "reason"), DENIED, ids=ident)
def test_a_node_may_do_nothing_else(request_attrs: Attributes, reason: str) -> None:
    with pytest.raises(status.APIError) as caught:
        authorize(NODE, request_attrs, OBJECTS)
    err = caught.value.status
    assert err["code"] == 403 and err["reason"] == "Forbidden" and err["kind"] == "Status"
    assert reason in err["message"]
    assert f'User "system:node:edge-1" cannot {request_attrs.verb} resource "{request_attrs.resource}' in err["message"]


def test_the_forbidden_message_is_kube_apiservers() -> None:
    with pytest.raises(status.APIError) as caught:
        authorize(NODE, attrs("get", "secrets", "their-secret"), OBJECTS)
    assert caught.value.status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'secrets "their-secret" is forbidden: User "system:node:edge-1" cannot get resource "secrets" in '
                   'API group "" in the namespace "default": no relationship found between node \'edge-1\' and this '
                   "object",
        "reason": "Forbidden", "details": {"name": "their-secret", "kind": "secrets"}, "code": 403}


@pytest.mark.parametrize("request_attrs", ALLOWED + [d[0] for d in DENIED], ids=ident)
def test_the_administrator_may_do_anything(request_attrs: Attributes) -> None:
    authorize(ADMIN, request_attrs, OBJECTS)


def test_an_identity_in_no_group_may_do_nothing() -> None:
    with pytest.raises(status.APIError):
        authorize(Identity("someone", ("system:authenticated",)), attrs("list", "pods"), OBJECTS)
    with pytest.raises(status.APIError):  # a node's name alone is not a node: the group is needed too
        authorize(Identity("system:node:edge-1", ()), attrs("list", "pods"), OBJECTS)


MIRROR = {"kubernetes.io/config.mirror": "abc"}


def mirror(node: str | None = "edge-1", annotations: dict | None = None, **spec) -> dict:
    p = pod("static-edge-1", node, **spec)
    p["metadata"]["annotations"] = MIRROR if annotations is None else annotations
    return p


UNREACHABLE = "node.kubernetes.io/unreachable"
NODE_CREATE = attrs("create", "nodes", namespace=None)


def node_obj(labels: dict[str, str], taints: list[dict] | None = None) -> dict:
    return {"metadata": {"name": "edge-1", "labels": labels}, "spec": {"taints": taints} if taints else {}}


@pytest.mark.parametrize(("new", "old", "a", "reason"), [
    (mirror(), None, attrs("create", "pods"), None),
    (mirror(annotations={}), None, attrs("create", "pods"), "can only create mirror pods"),
    (mirror("edge-2"), None, attrs("create", "pods"), "spec.nodeName set to itself"),
    (mirror(None), None, attrs("create", "pods"), "spec.nodeName set to itself"),
    (mirror(volumes=[{"name": "v", "secret": {"secretName": "s"}}]), None, attrs("create", "pods"),
     "reference configmaps or secrets"),
    (pod("mine", "edge-1"), pod("mine", "edge-1"), attrs("patch", "pods", "mine", sub="status"), None),
    (pod("mine", "edge-2"), pod("mine", "edge-1"), attrs("patch", "pods", "mine", sub="status"), "status of pods"),
    ({"metadata": {"name": "edge-1"}}, None, attrs("create", "nodes", namespace=None), None),
    ({"metadata": {"name": "edge-2"}}, None, attrs("create", "nodes", namespace=None), 'modify node "edge-2"'),
    (node_obj({"kubernetes.io/hostname": "edge-1", "node-role.kubernetes.io/edge": "", "team": "a",
               "node.kubernetes.io/exclude": "", "kubelet.kubernetes.io/x": ""}), None, NODE_CREATE, None),
    (node_obj({"node-restriction.kubernetes.io/secure": "", "node-role.kubernetes.io/control-plane": ""}), None,
     NODE_CREATE, "not allowed to set the following labels: node-restriction.kubernetes.io/secure, "
                  "node-role.kubernetes.io/control-plane"),
    (node_obj({"example.k8s.io/x": "1"}), None, NODE_CREATE, "set the following labels: example.k8s.io/x"),
    (node_obj({"team": "b"}), node_obj({"team": "a"}), attrs("patch", "nodes", "edge-1", None), None),
    (node_obj({"team": "a"}), node_obj({"team": "a", "foo.node-restriction.kubernetes.io/x": ""}),
     attrs("patch", "nodes", "edge-1", None), "not allowed to modify labels: foo.node-restriction.kubernetes.io/x"),
    (node_obj({}), node_obj({}, [{"key": UNREACHABLE, "effect": "NoSchedule"}]),
     attrs("update", "nodes", "edge-1", None, "status"), "not allowed to modify taints"),
    (node_obj({}, [{"key": UNREACHABLE, "effect": "NoSchedule"}]), node_obj({}, [{"key": UNREACHABLE,
     "effect": "NoSchedule"}]), attrs("patch", "nodes", "edge-1", None, "status"), None),
    ({"metadata": {"name": "edge-1", "namespace": "kube-node-lease"}}, None,
     attrs("create", "leases", namespace="kube-node-lease"), None),
    ({"metadata": {"name": "edge-2", "namespace": "kube-node-lease"}}, None,
     attrs("create", "leases", namespace="kube-node-lease"), "same name as the requesting node"),
    ({"metadata": {"name": "e", "namespace": "default"}}, None, attrs("create", "events"), None),
])
def test_node_restriction_admits_only_a_nodes_own_objects(new, old, a, reason) -> None:
    if reason is None:
        admit(NODE, a, new, old)
        return
    with pytest.raises(status.APIError) as caught:
        admit(NODE, a, new, old)
    assert caught.value.code == 403 and reason in caught.value.status["message"]
    admit(ADMIN, a, new, old)  # NodeRestriction is for nodes only


@pytest.mark.parametrize(("method", "name", "watch", "verb"), [
    ("GET", "x", False, "get"), ("GET", None, False, "list"), ("GET", None, True, "watch"), ("POST", None, False,
    "create"), ("PUT", "x", False, "update"), ("PATCH", "x", False, "patch"), ("DELETE", "x", False, "delete"),
    ("DELETE", None, False, "deletecollection"),
])
def test_verbs_are_derived_as_kube_derives_them(method, name, watch, verb) -> None:
    assert verb_of(method, name, watch) == verb


@pytest.mark.parametrize("sub", ["exec", "attach", "portforward"])
@pytest.mark.parametrize("verb", ["get", "create"])  # a WebSocket upgrade (GET), SPDY's POST
def test_streams_are_authorized_as_create_whatever_the_transport(sub: str, verb: str) -> None:
    """kube-apiserver requires create on pods/exec, pods/attach and pods/portforward for a WebSocket GET too."""
    authorize(ADMIN, attrs(verb, "pods", "mine", sub=sub), OBJECTS)  # the administrator keeps them
    with pytest.raises(status.APIError) as refused:
        authorize(NODE, attrs(verb, "pods", "mine", sub=sub), OBJECTS)  # not even into a pod bound to itself
    assert refused.value.code == 403 and refused.value.status["reason"] == "Forbidden"
    assert refused.value.status["message"] == (
        f'pods "mine" is forbidden: User "system:node:edge-1" cannot create resource "pods/{sub}" in API group "" '
        f"in the namespace \"default\": node 'edge-1' cannot create pods/{sub}")


@pytest.mark.parametrize("resource, group, sub", [
    ("deployments", "apps", None), ("deployments", "apps", "scale"), ("deployments", "apps", "status"),
    ("replicasets", "apps", None), ("daemonsets", "apps", None), ("controllerrevisions", "apps", None),
    ("jobs", "batch", None), ("replicationcontrollers", "", "scale"), ("services", "", None), ("endpoints", "", None),
    ("endpointslices", "discovery.k8s.io", None),
])
@pytest.mark.parametrize("verb", ["get", "list", "watch", "create", "update", "patch", "delete"])
def test_a_node_has_no_business_with_workloads_or_services(verb, resource, group, sub):
    """The workloads are the cloud's controllers' (kube's Node authorizer gives kubelets none of them); a node
    does not read Services either, having no proxy or DNS to feed."""
    with pytest.raises(status.APIError) as refused:
        authorize(NODE, Attributes(verb, resource, sub, "default", "x", group), OBJECTS)
    assert refused.value.status["code"] == 403
