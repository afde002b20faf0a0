"""The real kubectl with a node's credentials: what a kubelet needs works, the rest is Forbidden; revocation is 401."""
from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import requests
import yaml

from edgeworkers.config import Settings
from edgeworkers.kubeclient import node_kubeconfig_path
from tests.credentials import kubeconfig_token
from tests.integration.cloud.conftest import EDGEWORKERS

if TYPE_CHECKING:
    from tests.integration.cloud.conftest import Cloud, EdgeNode


def as_node(cloud: Cloud, kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={cloud.cache_dir}-node", *args],
        input=stdin, capture_output=True, text=True, timeout=60, env=cloud.env, check=False)


def forbidden(result: subprocess.CompletedProcess[str], user: str, verb: str, resource: str) -> bool:
    return result.returncode != 0 and "Error from server (Forbidden)" in result.stderr and \
        f'User "{user}" cannot {verb} resource "{resource}"' in result.stderr


def pod_manifest(name: str, node: str, secret: str | None = None) -> str:
    spec: dict = {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"]}]}
    if secret:
        spec["volumes"] = [{"name": "s", "secret": {"secretName": secret}}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def test_a_node_credential_does_only_what_a_kubelet_needs(cloud: Cloud, tmp_path: Path) -> None:
    kubeconfig = cloud.issue_node_credentials("edge-a", tmp_path / "edge-a")
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert stat.S_IMODE(kubeconfig.parent.stat().st_mode) == 0o700
    user = "system:node:edge-a"
    cloud.kubectl("create", "secret", "generic", "used-by-a", "--from-literal=k=v")
    cloud.kubectl("create", "secret", "generic", "unreferenced", "--from-literal=k=v")
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("on-a", "edge-a", secret="used-by-a"))
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("on-b", "edge-b"))
    for name in ("edge-a", "edge-b"):
        cloud.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node",
                                                             "metadata": {"name": name}}))

    # What a kubelet does: read pods and the secrets its pods use, change its own Node and pods' status.
    assert as_node(cloud, kubeconfig, "get", "pods", "-o", "name").stdout.split() == ["pod/on-a", "pod/on-b"]
    assert as_node(cloud, kubeconfig, "get", "secret", "used-by-a", "-o", "name").stdout.strip() == \
        "secret/used-by-a"
    assert as_node(cloud, kubeconfig, "label", "node", "edge-a", "x=y").returncode == 0
    patched = as_node(cloud, kubeconfig, "patch", "pod", "on-a", "--subresource=status", "--type=merge",
                      "-p", '{"status":{"message":"from the node"}}')
    assert patched.returncode == 0, patched.stderr

    # Anything else.
    secret = as_node(cloud, kubeconfig, "get", "secret", "unreferenced")
    assert forbidden(secret, user, "get", "secrets"), secret.stderr
    assert "no relationship found between node 'edge-a' and this object" in secret.stderr
    assert forbidden(as_node(cloud, kubeconfig, "get", "secrets"), user, "list", "secrets")
    assert forbidden(as_node(cloud, kubeconfig, "label", "node", "edge-b", "x=y"), user, "patch", "nodes")
    other_status = as_node(cloud, kubeconfig, "patch", "pod", "on-b", "--subresource=status", "--type=merge",
                           "-p", '{"status":{"message":"not mine"}}')
    assert forbidden(other_status, user, "patch", "pods/status"), other_status.stderr
    assert forbidden(as_node(cloud, kubeconfig, "delete", "pod", "on-b", "--wait=false"), user, "delete", "pods")
    assert forbidden(as_node(cloud, kubeconfig, "label", "pod", "on-a", "x=y"), user, "patch", "pods")
    created = as_node(cloud, kubeconfig, "create", "-f", "-", stdin=pod_manifest("made-by-a", "edge-a"))
    assert created.returncode != 0 and "can only create mirror pods" in created.stderr
    assert forbidden(as_node(cloud, kubeconfig, "delete", "namespace", "kube-public"), user, "delete",
                     "namespaces")
    assert cloud.pod("on-b") is not None and (cloud.pod("on-b") or {}).get("status", {}).get("message") is None

    # Revoked: 401 on the next request.
    subprocess.run([EDGEWORKERS, "cloud", "revoke-node-credentials", "edge-a"], env=cloud.env, check=True,
                   capture_output=True, timeout=30)
    revoked = as_node(cloud, kubeconfig, "get", "pods")
    assert revoked.returncode != 0 and "You must be logged in to the server (Unauthorized)" in revoked.stderr


def test_the_bridge_talks_as_its_node_not_as_the_administrator(cloud: Cloud, edge_node: EdgeNode) -> None:
    """`node serve` registers, renews its Lease and patches its status with credentials it issued itself."""
    settings = Settings(cloud_data_dir=cloud.data_dir, node_name=edge_node.name)
    kubeconfig = node_kubeconfig_path(settings)
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]
    assert user["name"] == f"system:node:{edge_node.name}"
    assert kubeconfig_token(kubeconfig) != (cloud.data_dir / "token").read_text().strip()
    assert "issued this node's credentials" in edge_node.log_path.read_text()
    lease = json.loads(cloud.kubectl("get", "lease", "-n", "kube-node-lease", edge_node.name, "-o", "json").stdout)
    assert lease["spec"]["holderIdentity"] == edge_node.name
    # The node's own identity cannot read another node's Lease.
    other = as_node(cloud, kubeconfig, "get", "lease", "-n", "kube-node-lease", "someone-else")
    assert forbidden(other, f"system:node:{edge_node.name}", "get", "leases"), other.stderr


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v4.channel.k8s.io"}
SPDY = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "portforward.k8s.io"}


def test_a_node_may_not_exec_attach_or_port_forward_whatever_the_transport(cloud: Cloud, tmp_path: Path) -> None:
    """kube requires create on pods/exec, pods/attach and pods/portforward, for a WebSocket GET as for SPDY's POST;
    a node has none of them, not even into a pod bound to itself. The administrator keeps them."""
    kubeconfig = cloud.issue_node_credentials("edge-s", tmp_path / "edge-s")
    token = kubeconfig_token(kubeconfig)
    cloud.kubectl("apply", "-f", "-", input=pod_manifest("on-s", "edge-s"))
    base = f"https://127.0.0.1:{cloud.port}/api/v1/namespaces/default/pods/on-s"
    ca = str(cloud.data_dir / "ca.crt")
    admin_token = (cloud.data_dir / "token").read_text().strip()
    for sub, query in (("exec", "?command=true&stdout=true"), ("attach", "?stdout=true"), ("portforward", "?ports=80")):
        for method, headers in (("GET", UPGRADE), ("POST", SPDY)):
            node_answer = requests.request(method, f"{base}/{sub}{query}", verify=ca, timeout=10,
                                       headers={**headers, "Authorization": f"Bearer {token}"})
            assert node_answer.status_code == 403, (sub, method, node_answer.text)
            body = node_answer.json()
            assert (body["kind"], body["reason"]) == ("Status", "Forbidden")
            assert body["message"].startswith(
                f'pods "on-s" is forbidden: User "system:node:edge-s" cannot create resource "pods/{sub}" in API '
                'group "" in the namespace "default"'), body["message"]
            admin = requests.request(method, f"{base}/{sub}{query}", verify=ca, timeout=10,
                                     headers={**headers, "Authorization": f"Bearer {admin_token}"})
            assert admin.status_code != 403, (sub, method, admin.text)  # past authorization (no such node: an error)
    refused = as_node(cloud, kubeconfig, "exec", "on-s", "--", "true")  # kubectl's WebSocket, then SPDY
    assert forbidden(refused, "system:node:edge-s", "create", "pods/exec"), refused.stderr
