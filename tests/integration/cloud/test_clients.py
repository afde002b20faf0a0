"""Independent clients against the cloud, each as its users would drive it: kubectl, the official Python client,
kr8s and lightkube. Each creates its client from the project's kubeconfig, lists pods and namespaces, creates a
configmap and a TLS secret from line-broken base64 (as `base64` and the Kubernetes documentation wrap it), reads a
pod's default tolerations, and asks who it is."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kr8s
import kubernetes
import yaml
from lightkube import Client as LightkubeClient
from lightkube import KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.authentication_v1 import SelfSubjectReview
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, Secret

from tests.credentials import kubeconfig_token

if TYPE_CHECKING:
    from conftest import Cloud

ADMIN = {"username": "edgeworkers:admin", "groups": ["system:masters", "system:authenticated"]}
DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def wrapped(data: bytes) -> str:
    """base64 with a line break every 76 characters, as `base64` writes it."""
    text = base64.encodebytes(data).decode()
    assert text.count("\n") > 1
    return text


def certificate(cloud: Cloud) -> bytes:
    return (cloud.data_dir / "ca.crt").read_bytes()


def pod_manifest(name: str) -> dict[str, Any]:
    # A selector no node matches: the pod stays unbound, and deletes at once.
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeSelector": {"edgeworkers.test/nowhere": "true"},
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}]}}


def check_stored(cloud: Cloud, prefix: str) -> None:
    """What the cloud stored from each client: the base64 values without their line breaks."""
    secret = cloud.api.get(f"/api/v1/namespaces/default/secrets/{prefix}-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"], validate=True) == certificate(cloud)
    configmap = cloud.api.get(f"/api/v1/namespaces/default/configmaps/{prefix}-bin")
    assert base64.b64decode(configmap["binaryData"]["blob"], validate=True) == certificate(cloud)
    assert secret["data"]["tls.crt"] not in cloud.log_path.read_text(errors="replace")


def test_kubectl(cloud: Cloud) -> None:
    cloud.kubectl("get", "pods")
    namespaces = cloud.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(namespaces)
    cloud.kubectl("get", "pods", "-A")
    cert = wrapped(certificate(cloud))
    manifests = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kubectl-tls"}, "type": "kubernetes.io/tls",
         "data": {"tls.crt": cert, "tls.key": cert}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubectl-bin"}, "binaryData": {"blob": cert}},
        pod_manifest("kubectl-pod"),
    ]
    cloud.kubectl("create", "-f", "-", input=yaml.safe_dump_all(manifests))
    check_stored(cloud, "kubectl")
    tolerations = cloud.kubectl("get", "pod", "kubectl-pod", "-o", "jsonpath={.spec.tolerations}").stdout
    assert json.loads(tolerations) == DEFAULT_TOLERATIONS
    whoami = json.loads(cloud.kubectl("auth", "whoami", "-o", "json").stdout)
    assert whoami["kind"] == "SelfSubjectReview" and whoami["status"]["userInfo"] == ADMIN
    table = cloud.kubectl("auth", "whoami").stdout
    assert "edgeworkers:admin" in table and "[system:masters system:authenticated]" in table
    cloud.kubectl("delete", "pod", "kubectl-pod", "--wait=false")


def test_kubectl_applies_what_it_printed_as_a_list_and_explains(cloud: Cloud) -> None:
    """`kubectl get -o yaml` prints a `kind: List`; applying it back validates it against /openapi/v2."""
    for name in ("listed-a", "listed-b"):
        cloud.kubectl("create", "configmap", name, f"--from-literal=k={name}")
    printed = yaml.safe_load(cloud.kubectl("get", "configmaps", "listed-a", "listed-b", "-o", "yaml").stdout)
    assert printed["kind"] == "List"
    for item in printed["items"]:
        item["data"]["k"] += "-changed"
    cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump(printed))
    assert cloud.kubectl("get", "configmap", "listed-b", "-o", "jsonpath={.data.k}").stdout == "listed-b-changed"
    printed["items"][0]["unknownField"] = 1
    refused = cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump(printed), check=False)
    assert refused.returncode != 0 and 'unknown field "unknownField" in io.k8s.api.core.v1.ConfigMap' in refused.stderr
    explained = cloud.kubectl("explain", "pods.spec.containers.livenessProbe.httpGet.port").stdout
    assert "FIELD: port <" in explained and "Name or number of the port to access on the container" in explained
    cloud.kubectl("delete", "configmap", "listed-a", "listed-b")


def test_official_python_client(cloud: Cloud) -> None:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(cloud.kubeconfig), client_configuration=configuration)
    with kubernetes.client.ApiClient(configuration) as api:
        core = kubernetes.client.CoreV1Api(api)
        core.list_namespaced_pod("default")
        assert "default" in {ns.metadata.name for ns in core.list_namespace().items}
        cert = wrapped(certificate(cloud))
        core.create_namespaced_secret("default", kubernetes.client.V1Secret(
            metadata=kubernetes.client.V1ObjectMeta(name="python-tls"), type="kubernetes.io/tls",
            data={"tls.crt": cert, "tls.key": cert}))
        core.create_namespaced_config_map("default", kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(name="python-bin"), binary_data={"blob": cert}))
        check_stored(cloud, "python")
        core.create_namespaced_pod("default", pod_manifest("python-pod"))
        tolerations = core.read_namespaced_pod("python-pod", "default").spec.tolerations
        assert [api.sanitize_for_serialization(t) for t in tolerations] == DEFAULT_TOLERATIONS
        review = kubernetes.client.AuthenticationV1Api(api).create_self_subject_review(
            kubernetes.client.V1SelfSubjectReview())
        assert (review.status.user_info.username, review.status.user_info.groups) == (ADMIN["username"],
                                                                                      ADMIN["groups"])
        core.delete_namespaced_pod("python-pod", "default")


def test_kr8s(cloud: Cloud) -> None:
    api = kr8s.api(kubeconfig=str(cloud.kubeconfig))  # asks /version/ at once
    api.get("pods", namespace="default")
    assert "default" in {ns.name for ns in api.get("namespaces")}
    assert ("secret/v1", "secrets", True) == api.lookup_kind("Secret")  # discovery: /api/, /api/v1/, /apis/ ...
    cert = wrapped(certificate(cloud))
    kr8s.objects.Secret({"metadata": {"name": "kr8s-tls", "namespace": "default"}, "type": "kubernetes.io/tls",
                         "data": {"tls.crt": cert, "tls.key": cert}}, api=api).create()
    kr8s.objects.ConfigMap({"metadata": {"name": "kr8s-bin", "namespace": "default"}, "binaryData": {"blob": cert}},
                           api=api).create()
    check_stored(cloud, "kr8s")
    pod = kr8s.objects.Pod(pod_manifest("kr8s-pod") | {"metadata": {"name": "kr8s-pod", "namespace": "default"}},
                           api=api)
    pod.create()
    assert kr8s.objects.Pod.get("kr8s-pod", namespace="default", api=api).spec["tolerations"] == DEFAULT_TOLERATIONS
    assert api.whoami() == ADMIN["username"]  # kr8s asks with a TokenReview of its own token
    pod.delete()


def test_lightkube(cloud: Cloud) -> None:
    client = LightkubeClient(config=KubeConfig.from_file(str(cloud.kubeconfig)))
    list(client.list(Pod, namespace="default"))
    assert "default" in {ns.metadata.name for ns in client.list(Namespace)}
    cert = wrapped(certificate(cloud))
    client.create(Secret(metadata=ObjectMeta(name="lightkube-tls", namespace="default"), type="kubernetes.io/tls",
                         data={"tls.crt": cert, "tls.key": cert}))
    client.create(ConfigMap(metadata=ObjectMeta(name="lightkube-bin", namespace="default"),
                            binaryData={"blob": cert}))
    check_stored(cloud, "lightkube")
    client.create(Pod.from_dict(pod_manifest("lightkube-pod")), namespace="default")
    tolerations = client.get(Pod, "lightkube-pod", namespace="default").spec.tolerations
    assert [t.to_dict() for t in tolerations] == DEFAULT_TOLERATIONS
    review = client.create(SelfSubjectReview())
    assert (review.status.userInfo.username, review.status.userInfo.groups) == (ADMIN["username"], ADMIN["groups"])
    client.delete(Pod, "lightkube-pod", namespace="default")


def test_kubectl_whoami_as_a_node_and_token_reviews(cloud: Cloud, tmp_path: Path) -> None:
    node_kubeconfig = cloud.issue_node_credentials("whoami-node", tmp_path / "node")
    as_node = ["--kubeconfig", str(node_kubeconfig)]
    whoami = json.loads(cloud.kubectl(*as_node, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"] == {"username": "system:node:whoami-node",
                                            "groups": ["system:nodes", "system:authenticated"]}
    node_token = kubeconfig_token(node_kubeconfig)
    review = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                         "spec": {"token": node_token}})
    # `--raw`: kubectl's client-side validation of a kind without a PATCH looks for CRDs, which are not served
    raw = ("create", "--raw", "/apis/authentication.k8s.io/v1/tokenreviews", "-f", "-")
    refused = cloud.kubectl(*as_node, *raw, input=review, check=False)
    assert refused.returncode != 0
    assert ('Error from server (Forbidden): tokenreviews.authentication.k8s.io is forbidden: User '
            '"system:node:whoami-node" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at '
            'the cluster scope') in refused.stderr
    answered = json.loads(cloud.kubectl(*raw, input=review).stdout)
    assert answered["status"]["authenticated"] is True
    assert answered["status"]["user"]["username"] == "system:node:whoami-node"
