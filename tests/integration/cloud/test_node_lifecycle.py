"""The cloud's node lifecycle controller against a real node process and the real kubectl.

A stopped node turns NotReady (Ready=Unknown, NodeStatusUnknown) with the unreachable NoSchedule taint, its
pod's Ready condition turns False and the pod stays (edge autonomy: never evicted); started again, the node
is Ready again and the taint goes. The grace period is short here but longer than the node's 10 s heartbeat,
or a healthy node would turn Unknown between two heartbeats.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.integration.cloud.conftest import running_cloud, running_node, stop_process

if TYPE_CHECKING:
    from tests.integration.cloud.conftest import Cloud

FAST_MONITOR = {"EDGEWORKERS_NODE_MONITOR_GRACE_PERIOD_S": "15", "EDGEWORKERS_NODE_MONITOR_PERIOD_S": "1"}
UNREACHABLE = "node.kubernetes.io/unreachable"


@pytest.fixture
def fast_cloud(tmp_path: Path) -> Iterator[Cloud]:
    root = tmp_path / "fast-cloud"
    root.mkdir()
    with running_cloud(root, FAST_MONITOR) as cloud:
        yield cloud


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"].get("conditions", []) if c["type"] == "Ready")


def test_a_stopped_node_turns_not_ready_keeps_its_pod_and_comes_back(
    fast_cloud: Cloud, node_name: str, tmp_path: Path, redis_url: str
) -> None:
    cloud = fast_cloud
    node_path = f"/api/v1/nodes/{node_name}"
    with running_node(cloud, node_name, tmp_path, redis_url) as edge:
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kept"},
                    "spec": {"nodeName": node_name, "containers": [{"name": "app", "image": "busybox"}]}}
        cloud.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
        uid = cloud.pod("kept")["metadata"]["uid"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # What the node reports of a running pod (the bridge that runs it arrives later).
        cloud.api.patch("/api/v1/namespaces/default/pods/kept/status", {"metadata": {"uid": uid}, "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}],
        }})
        stop_process(edge.process)

        def not_ready() -> list[str] | None:
            row = cloud.kubectl("get", "node", node_name, "--no-headers").stdout.split()
            return row if row[1] == "NotReady" else None

        cloud.wait_for(not_ready, timeout_s=45, what="the stopped node to turn NotReady")

    node = cloud.api.get(node_path)
    assert {c["status"] for c in node["status"]["conditions"]} == {"Unknown"}
    assert (ready(node)["reason"], ready(node)["message"]) == ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert [(t["key"], t["effect"]) for t in node["spec"]["taints"]] == [(UNREACHABLE, "NoSchedule")]
    described = cloud.kubectl("describe", "node", node_name).stdout
    assert f"Taints:             {UNREACHABLE}:NoSchedule" in described
    pod = cloud.wait_for(lambda: (p := cloud.pod("kept")) and ready(p)["status"] == "False" and p,
                         what="the pod's Ready condition to turn False")
    assert pod["metadata"]["uid"] == uid and "deletionTimestamp" not in pod["metadata"]  # not evicted
    assert pod["status"]["phase"] == "Running"
    row = cloud.kubectl("get", "pod", "kept", "--no-headers").stdout.split()
    assert row[:3] == ["kept", "0/1", "Running"]

    with running_node(cloud, node_name, tmp_path, redis_url):  # returns once the node posted Ready=True again
        cloud.wait_for(lambda: not cloud.api.get(node_path)["spec"].get("taints"), timeout_s=15,
                       what="the unreachable taint to go")
        assert cloud.kubectl("get", "node", node_name, "--no-headers").stdout.split()[1] == "Ready"
        node = json.loads(cloud.kubectl("get", "node", node_name, "-o", "json").stdout)
        assert (ready(node)["status"], ready(node)["reason"]) == ("True", "KubeletReady")
