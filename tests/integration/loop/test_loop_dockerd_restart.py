"""dockerd itself restarted (its containers stop with it): every pod runs again within 30 s of dockerd answering, its
restarts counted, nothing duplicated.

Only a dockerd that the project's own ``ops/services`` started (its pidfile, ``.run/dockerd.pid``) is restarted, by
that PID, and started again by ``ops/services``; on a machine whose dockerd was started otherwise, the test is skipped.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import docker
import pytest

from edgeworkers.runtime import labels
from tests.integration.loop.conftest import Cluster, busybox_pod, hold_for, running_at_cloud
from tests.polling import wait_for

pytestmark = pytest.mark.serial  # restarts the dockerd every other test uses: run alone

ROOT = Path(__file__).resolve().parents[3]
PIDFILE = ROOT / ".run" / "dockerd.pid"
BACK_WITHIN_S = 30


def our_dockerd() -> int | None:
    """The PID of the dockerd ``ops/services`` started, if that is the one running."""
    try:
        pid = int(PIDFILE.read_text())
        return pid if Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd" else None
    except (OSError, ValueError):
        return None


def docker_answers() -> bool:
    try:
        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except docker.errors.DockerException:
        return False


def exactly_one_running_each(cluster: Cluster, pods: list[str]) -> bool:
    """Each pod has one running sandbox and one running app container, and no other running container."""
    for pod in pods:
        running = [c for c in cluster.containers(pod) if c.status == "running"]
        names = sorted(c.labels[labels.CONTAINER_NAME] for c in running)
        if names != ["POD", "app"]:
            return False
    return True


def test_every_pod_runs_again_after_dockerd_restarts(cluster: Cluster) -> None:
    pid = our_dockerd()
    if pid is None:
        pytest.skip("dockerd was not started by ops/services: this test restarts only a dockerd the project started")
    pods = ["phoenix-a", "phoenix-b", "phoenix-c"]
    cluster.apply(*(busybox_pod(name, grace=0) for name in pods))
    cluster.wait_running(*pods)

    os.kill(pid, signal.SIGTERM)  # dockerd stops its containers, then exits
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 90, "dockerd to exit", interval_s=0.2)
    subprocess.run([str(ROOT / "ops" / "services")], check=True, timeout=120, capture_output=True)
    wait_for(docker_answers, 60, "dockerd to answer again")
    wait_for(lambda: exactly_one_running_each(cluster, pods), BACK_WITHIN_S,
             "every pod running again within 30 s of dockerd answering", interval_s=0.5)

    def counted_at_cloud() -> bool:
        cloud = cluster.cloud_pods()
        return all(running_at_cloud(cloud.get(name))
                   and cloud[name]["status"]["containerStatuses"][0]["restartCount"] >= 1 for name in pods)

    wait_for(counted_at_cloud, 30, "the cloud showing each pod Running with its restart counted")
    hold_for(lambda: exactly_one_running_each(cluster, pods), 3, "one sandbox and one app container per pod")
