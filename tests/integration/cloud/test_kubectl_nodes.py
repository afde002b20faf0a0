"""kubectl and a real edge node: `edgeworkers node serve` registers, heartbeats, and serves logs via the cloud.

The pod's container is started by the test itself with the labels the agent gives its containers (the cloud
bridge that would make it from the pod arrives in a later issue), so the log path cloud -> node -> Docker
is the real one.
"""
from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import docker
import yaml

from edgeworkers.runtime import labels
from edgeworkers.runtime.types import PodRef
from tests.integration.cloud.conftest import node_healthz

if TYPE_CHECKING:
    from conftest import Cloud, EdgeNode


def test_get_nodes_wide_shows_the_registered_node(cloud: Cloud, edge_node: EdgeNode) -> None:
    lines = cloud.kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    row = next(line for line in lines[1:] if line.startswith(edge_node.name + " "))
    cells = row.split()
    assert cells[1:3] == ["Ready", "edge"]
    assert cells[4:7] == ["v1.32.0-edgeworkers", "127.0.0.1", "<none>"]
    assert cells[-1].startswith("docker://")

    node = json.loads(cloud.kubectl("get", "node", edge_node.name, "-o", "json").stdout)
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == edge_node.port
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == edge_node.name


def test_the_node_holds_its_lease(cloud: Cloud, edge_node: EdgeNode) -> None:
    lease = json.loads(cloud.kubectl(
        "get", "lease", edge_node.name, "-n", "kube-node-lease", "-o", "json").stdout)
    assert lease["spec"]["holderIdentity"] == edge_node.name
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    described = cloud.kubectl("describe", "node", edge_node.name).stdout
    assert re.search(r"^  Ready\s+True\s+.*KubeletReady\s+kubelet is posting ready status$", described, re.MULTILINE)
    assert re.search(rf"^Lease:\n  HolderIdentity:  {edge_node.name}$", described, re.MULTILINE)
    assert re.search(r"^  Container Runtime Version:\s+docker://", described, re.MULTILINE)
    assert re.search(rf"^  Normal\s+NodeReady\s+\S+\s+kubelet\s+Node {edge_node.name} status is now: NodeReady$",
                     described, re.MULTILINE), described.split("Events:")[-1]


def test_an_unbound_pod_is_scheduled_to_the_node(cloud: Cloud, edge_node: EdgeNode) -> None:
    selector = {"kubernetes.io/hostname": edge_node.name}
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "placed"},
        "spec": {"nodeSelector": selector, "containers": [{"name": "bb", "image": "busybox"}]},
    }
    cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    bound = cloud.wait_for(lambda: (cloud.pod("placed") or {}).get("spec", {}).get("nodeName"), what="binding")
    assert bound == edge_node.name
    row = next(line.split() for line in cloud.kubectl("get", "pods", "-o", "wide").stdout.splitlines()
               if line.startswith("placed "))
    assert row[6] == edge_node.name


def test_placement_by_affinity_and_requests_and_failed_scheduling(cloud: Cloud, edge_node: EdgeNode) -> None:
    """kube-scheduler's filters: required node affinity on the node's name, requests against its allocatable; a pod
    that fits nowhere stays Pending with FailedScheduling and kube's message."""
    def pod(name: str, node_value: str, cpu: str) -> dict:
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node_value]}]}]}}}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"affinity": affinity, "containers": [{"name": "bb", "image": "busybox",
                                                               "resources": {"requests": {"cpu": cpu}}}]}}

    cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        pod("affine", edge_node.name, "10m"), pod("elsewhere", "no-such-node", "10m"),
        pod("too-big", edge_node.name, "100000")]))
    assert cloud.wait_for(lambda: (cloud.pod("affine") or {}).get("spec", {}).get("nodeName"),
                          what="binding") == edge_node.name

    def failed(name: str) -> str | None:
        events = json.loads(cloud.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                                          "-o", "json").stdout)["items"]
        return next((e["message"] for e in events if e["reason"] == "FailedScheduling"), None)

    assert "didn't match Pod's node affinity/selector" in cloud.wait_for(lambda: failed("elsewhere"),
                                                                          what="FailedScheduling")
    assert "Insufficient cpu" in cloud.wait_for(lambda: failed("too-big"), what="FailedScheduling")
    for name in ("elsewhere", "too-big"):
        assert (cloud.pod(name) or {})["status"]["phase"] == "Pending" and not cloud.pod(name)["spec"].get("nodeName")
    cloud.kubectl("delete", "pod", "affine", "elsewhere", "too-big", "--wait=false")


def test_logs_come_from_the_nodes_container(
    cloud: Cloud, edge_node: EdgeNode, docker_client: docker.DockerClient
) -> None:
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker"},
        "spec": {"nodeName": edge_node.name, "containers": [{"name": "app", "image": "busybox"}]},
    }
    cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    uid = cloud.pod("talker")["metadata"]["uid"]
    pod = PodRef(uid, "default", "talker")
    docker_client.containers.run(
        "busybox", ["sh", "-c", "echo hello; echo world; sleep 1; echo bye"], detach=True,
        name=labels.docker_name(pod, "app", 0),
        labels=labels.for_container(edge_node.name, pod, "app", labels.TYPE_APP, 0),
    )

    started = time.monotonic()
    followed = cloud.kubectl("logs", "-f", "talker", timeout_s=30)
    assert followed.stdout == "hello\nworld\nbye\n"
    assert time.monotonic() - started >= 0.5, "follow waited for the container's last line"
    assert cloud.kubectl("logs", "talker", "--tail=1").stdout == "bye\n"
    stamped = cloud.kubectl("logs", "talker", "-c", "app", "--timestamps").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["hello", "world", "bye"]

    previous = cloud.kubectl("logs", "talker", "--previous", check=False)
    assert previous.returncode != 0
    assert 'previous terminated container "app" in pod "talker" not found' in previous.stderr
    wrong = cloud.kubectl("logs", "talker", "-c", "nope", check=False)
    assert wrong.returncode != 0
    assert "container nope is not valid for pod talker" in wrong.stderr


def test_the_node_survives_the_cloud_going_away(own_cloud: Cloud, own_edge_node: EdgeNode) -> None:
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{own_edge_node.name}"
    own_cloud.stop()
    down_at = datetime.now(UTC)
    # While the cloud is away the node keeps serving its own endpoint and keeps trying (a 10 s heartbeat).
    own_cloud.wait_for(lambda: "node heartbeat failed" in own_edge_node.log_path.read_text(), timeout_s=20,
                       what="a failed heartbeat")
    assert own_edge_node.process.poll() is None
    assert node_healthz(own_cloud, own_edge_node.port, own_edge_node.name)

    own_cloud.start()
    renewed = own_cloud.wait_for(
        lambda: (t := own_cloud.api.get(lease_path)["spec"]["renewTime"]) > down_at.strftime("%Y-%m-%dT%H:%M:%S")
        and t,
        timeout_s=30, what="the lease to be renewed after the outage",
    )
    assert renewed.endswith("Z")
    out = own_cloud.kubectl("get", "node", own_edge_node.name).stdout.splitlines()
    assert out[1].split()[:2] == [own_edge_node.name, "Ready"]
