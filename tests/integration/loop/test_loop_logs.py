"""Container logs rotated as kubelet rotates them (Docker's json-file max-size/max-file from the settings), read with
real kubectl across the rotated files: ``--tail``, ``--timestamps``, ``--since``, ``-f``; ``--previous`` after a
restart, and kube's error when there is no previous instance."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis

from edgeworkers.config import Settings
from edgeworkers.runtime import labels
from tests.integration.cloud.conftest import Cloud
from tests.integration.loop.conftest import Cluster, busybox_pod, running_cluster
from tests.polling import wait_for

MAX_SIZE = 64 * 1024
MAX_FILES = 2
LINES = 60_000  # about 4 MB of json-file log: some 60 rotations of 64 KiB
ROTATION = {"EDGEWORKERS_CONTAINER_LOG_MAX_SIZE": "64Ki", "EDGEWORKERS_CONTAINER_LOG_MAX_FILES": str(MAX_FILES)}


@pytest.fixture
def cluster(shared_cloud: Cloud, real_settings: Settings, tmp_path: Path, real_redis: redis.Redis,
            docker_client: docker.DockerClient) -> Iterator[Cluster]:
    with running_cluster(shared_cloud, real_settings, tmp_path, real_redis, docker_client, ROTATION) as started:
        yield started


def log_files(cluster: Cluster, pod: str) -> list[Path]:
    """The json-file logs (current and rotated) of the pod's app container, under Docker's data root."""
    app = next(c for c in cluster.containers(pod) if c.labels.get(labels.CONTAINER_TYPE) == labels.TYPE_APP)
    root = Path(cluster.docker.info()["DockerRootDir"]) / "containers" / app.id
    return sorted(root.glob("*-json.log*"))


def test_a_fast_printing_pod_keeps_its_logs_within_the_limit_and_kubectl_reads_the_newest(cluster: Cluster) -> None:
    cluster.apply(busybox_pod("chatty", f"seq 1 {LINES}; echo done; sleep 3600"))
    cluster.wait_running("chatty")
    wait_for(lambda: cluster.kubectl("logs", "chatty", "--tail=1", check=False).stdout == "done\n", 60,
             "the pod's last line in kubectl logs --tail=1")

    files = log_files(cluster, "chatty")
    assert 1 <= len(files) <= MAX_FILES, files
    line_bytes = 100  # a json-file line for one number, at most: a file ends at most one line above the limit
    assert all(f.stat().st_size <= MAX_SIZE + line_bytes for f in files), [(f.name, f.stat().st_size) for f in files]
    assert len(files) == MAX_FILES  # it did rotate: LINES lines are far more than the limit

    tail = cluster.kubectl("logs", "chatty", "--tail=3").stdout
    assert tail == f"{LINES - 1}\n{LINES}\ndone\n"
    stamped = cluster.kubectl("logs", "chatty", "--tail=1", "--timestamps").stdout
    assert stamped.endswith(" done\n") and stamped[:4].isdigit()
    assert cluster.kubectl("logs", "chatty", "--since=1h", "--tail=1").stdout == "done\n"
    everything = cluster.kubectl("logs", "chatty").stdout.splitlines()  # what the rotated files still hold
    assert everything[-1] == "done" and 0 < len(everything) < LINES
    assert [int(n) for n in everything[:-1]] == list(range(LINES - len(everything) + 2, LINES + 1))

    follow = cluster.cloud.kubectl_popen("logs", "-f", "chatty", "--tail=2")
    try:
        assert follow.stdout is not None
        assert [follow.stdout.readline(), follow.stdout.readline()] == [f"{LINES}\n", "done\n"]
        time.sleep(0.5)
        assert follow.poll() is None  # still following the running container
    finally:
        follow.kill()
        follow.wait(10)


def test_kubectl_logs_previous_shows_the_last_dead_instance_or_says_there_is_none(cluster: Cluster) -> None:
    counting = ("n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo instance $n; "
                "sleep 2; exit 3")
    pod = busybox_pod("restarter", counting, volumes=[{"name": "data", "emptyDir": {}}])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    cluster.apply(pod)
    wait_for(lambda: cluster.kubectl("logs", "restarter", check=False).stdout == "instance 1\n", 60,
             "the first instance's output")
    none = cluster.kubectl("logs", "restarter", "--previous", check=False)
    assert none.returncode != 0
    assert 'previous terminated container "app" in pod "restarter" not found' in none.stderr

    def restarted() -> bool:
        statuses = ((cluster.cloud_pod("restarter") or {}).get("status") or {}).get("containerStatuses") or []
        return bool(statuses) and statuses[0].get("restartCount", 0) >= 1

    wait_for(restarted, 90, "the container's first restart")
    current = wait_for(lambda: cluster.kubectl("logs", "restarter", check=False).stdout or None, 30, "current logs")
    previous = cluster.kubectl("logs", "restarter", "--previous").stdout
    number = int(current.split()[-1])
    assert previous == f"instance {number - 1}\n"
