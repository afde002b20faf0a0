"""With the cloud, bridge, worker and scheduler running (the loop tests' cluster): `kubectl get pod` shows a
container's restart after its liveness probe failed, and `kubectl describe pod` the probe's events."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis

from edgeworkers.config import Settings
from edgeworkers.runtime import labels
from tests.integration.cloud.conftest import running_cloud
from tests.integration.loop.conftest import Cluster, busybox_pod, running_cluster
from tests.integration.queue.queuekit import node_containers
from tests.polling import wait_for


@pytest.fixture
def cluster(tmp_path: Path, real_settings: Settings, real_redis: redis.Redis,
            docker_client: docker.DockerClient) -> Iterator[Cluster]:  # fmt: skip
    root = tmp_path / "cloud"
    root.mkdir()
    with running_cloud(root) as cloud, running_cluster(cloud, real_settings, tmp_path, real_redis, docker_client) as c:
        yield c


def test_kubectl_shows_a_liveness_restart_and_the_probe_events(cluster: Cluster, docker_client, node_name) -> None:
    pod = busybox_pod("live", "touch /tmp/healthy; sleep 3600", grace=0)
    pod["spec"]["containers"][0]["livenessProbe"] = {"exec": {"command": ["cat", "/tmp/healthy"]},
                                                     "periodSeconds": 1, "failureThreshold": 1}  # fmt: skip
    cluster.apply(pod)
    cluster.wait_running("live")
    app = next(c for c in node_containers(docker_client, node_name, "live")
               if c.status == "running" and c.labels[labels.CONTAINER_NAME] == "app")  # fmt: skip
    app.exec_run(["rm", "/tmp/healthy"])

    def restarted() -> dict | None:
        shown = json.loads(cluster.kubectl("get", "pod", "live", "-o", "json").stdout)
        statuses = shown["status"].get("containerStatuses") or []
        return shown if statuses and statuses[0]["restartCount"] >= 1 and "running" in statuses[0]["state"] else None

    wait_for(restarted, 30, "kubectl get pod showing the restart", interval_s=0.5)
    table = cluster.kubectl("get", "pod", "live").stdout.splitlines()
    assert table[1].split()[:4] == ["live", "1/1", "Running", "1"], table

    def described() -> str | None:
        text = cluster.kubectl("describe", "pod", "live").stdout
        return text if "Unhealthy" in text and "Killing" in text else None

    text = wait_for(described, 30, "the probe's events in kubectl describe", interval_s=0.5)
    assert "Liveness probe failed" in text
    assert "Container app failed liveness probe, will be restarted" in text
