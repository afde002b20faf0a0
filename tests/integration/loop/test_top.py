"""``kubectl top node`` and ``kubectl top pod`` from the usage the real node reports through its outbox; who may write
a node's usage."""
from __future__ import annotations

import re

import pytest
import requests

from tests.credentials import kubeconfig_token
from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.polling import wait_for

METRICS = "/apis/metrics.k8s.io/v1beta1"


@pytest.fixture
def reporting(cluster: Cluster) -> Cluster:
    """The cluster with a pod running and the scheduler reporting usage every second."""
    cluster.extra_env["EDGEWORKERS_USAGE_PERIOD_S"] = "1"
    cluster.stop_scheduler()
    cluster.start_scheduler()
    cluster.apply(busybox_pod("busy", "sleep 3600"))
    cluster.wait_running("busy")
    return cluster


def top(cluster: Cluster, *args: str) -> list[list[str]] | None:
    """The rows ``kubectl top`` prints (header first), or None while it has no figures yet."""
    result = cluster.kubectl("top", *args, check=False)
    rows = [line.split() for line in result.stdout.splitlines()]
    return rows if result.returncode == 0 and len(rows) >= 2 else None


def test_kubectl_top_pod_and_node_print_the_nodes_figures(reporting: Cluster) -> None:
    rows = wait_for(lambda: top(reporting, "pod", "busy"), 60, "kubectl top pod busy to print figures")
    assert rows[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    name, cpu, memory = rows[1]
    assert name == "busy"
    assert re.fullmatch(r"\d+m", cpu), cpu
    assert re.fullmatch(r"\d+Mi", memory), memory

    containers = wait_for(lambda: top(reporting, "pod", "busy", "--containers"), 30, "kubectl top pod --containers")
    assert containers[1][:2] == ["busy", "app"]

    rows = wait_for(lambda: top(reporting, "node", reporting.node), 30, "kubectl top node to print figures")
    assert rows[0][:3] == ["NAME", "CPU(cores)", "CPU(%)"] or rows[0][:2] == ["NAME", "CPU(cores)"]
    assert rows[1][0] == reporting.node
    assert re.fullmatch(r"\d+m", rows[1][1]), rows
    assert any(re.fullmatch(r"\d+Mi", cell) for cell in rows[1][2:]), rows

    metrics = reporting.cloud.api.get(f"{METRICS}/namespaces/default/pods/busy")
    assert metrics["kind"] == "PodMetrics"
    assert metrics["containers"][0]["name"] == "app"
    assert re.fullmatch(r"\d+(n|u|m)?", metrics["containers"][0]["usage"]["cpu"])
    assert re.fullmatch(r"\d+(Ki)?", metrics["containers"][0]["usage"]["memory"])


def test_a_new_pods_first_usage_comes_within_seconds_not_a_period(cluster: Cluster) -> None:
    """With the default 15 s period, a pod that starts between two reports is reported at once over its life so far:
    10 s from Running at the cloud (5 s on a quiet machine) is under the 15 s that one period would take."""
    cluster.apply(busybox_pod("warm", "sleep 3600"))
    cluster.wait_running("warm")
    wait_for(lambda: top(cluster, "pod", "warm"), 60, "the first report of the node")  # the job runs and reports
    cluster.apply(busybox_pod("fresh", "sleep 3600"))
    cluster.wait_running("fresh")
    rows = wait_for(lambda: top(cluster, "pod", "fresh"), 10, "kubectl top pod fresh within seconds of Running")
    assert rows[1][0] == "fresh"


def node_token(cluster: Cluster, node: str) -> str:
    path = cluster.cloud.data_dir / "nodes" / node / "kubeconfig"
    if not path.exists():
        path = cluster.cloud.issue_node_credentials(node)
    return kubeconfig_token(path)


def test_only_a_node_itself_may_write_its_usage_and_no_one_anonymous_reads_it(cluster: Cluster) -> None:
    base = f"https://127.0.0.1:{cluster.cloud.port}{METRICS}"
    ca = str(cluster.cloud.data_dir / "ca.crt")
    report = {"timestamp": "2026-01-01T00:00:00Z", "windowSeconds": 15, "node": {"cpu": 1, "memory": 1024}, "pods": []}
    assert requests.get(f"{base}/nodes", verify=ca, timeout=10).status_code == 401
    assert requests.put(f"{base}/nodes/{cluster.node}", json=report, verify=ca, timeout=10).status_code == 401

    other = {"Authorization": f"Bearer {node_token(cluster, cluster.node + '-other')}"}
    refused = requests.put(f"{base}/nodes/{cluster.node}", json=report, headers=other, verify=ca, timeout=10)
    assert refused.status_code == 403
    assert f"node '{cluster.node}-other' can only modify its own Node" in refused.json()["message"]

    own = {"Authorization": f"Bearer {node_token(cluster, cluster.node)}"}
    assert requests.put(f"{base}/nodes/{cluster.node}", json=report, headers=own, verify=ca,
                        timeout=10).status_code == 200
    got = cluster.cloud.api.get(f"{METRICS}/nodes/{cluster.node}")
    assert got["usage"] == {"cpu": "1n", "memory": "1Ki"}
