"""Reaching and protecting pods with the real Docker and kubectl: hostPorts published on the node (and freed with
the pod), a second pod asking a held port refused as kubelet refuses it, kubelet's oom_score_adj on each container
and on the agent, and a fork loop held at the PID limit while the rest of the node works on."""
from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from edgeworkers.pods.admission import NODE_PORTS_MESSAGE
from edgeworkers.process import AGENT_OOM_SCORE_ADJ, node_oom_score_floor
from tests.integration.cloud.conftest import free_port
from tests.integration.lite.conftest import LiteCluster
from tests.integration.loop.conftest import busybox_pod, hold_for
from tests.polling import wait_for

HTTPD = "mkdir -p /www && echo hello from $HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www"


def web_pod(name: str, host_port: int, host_ip: str = "") -> dict[str, Any]:
    pod = busybox_pod(name, HTTPD)
    port = {"containerPort": 8080, "hostPort": host_port, **({"hostIP": host_ip} if host_ip else {})}
    pod["spec"]["containers"][0]["ports"] = [port]
    return pod


def get(port: int) -> str | None:
    """The body of ``GET http://127.0.0.1:<port>/``, None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def port_free(port: int) -> bool:
    """Nothing listens on ``port`` (connections of the test's GETs may linger in TIME_WAIT: those do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def test_a_host_port_reaches_the_pod_a_second_pod_asking_it_is_refused_and_the_delete_frees_it(
    lite_cluster: LiteCluster,
) -> None:
    port = free_port()
    lite_cluster.apply(web_pod("web", port))
    lite_cluster.wait_running("web")
    assert wait_for(lambda: get(port), 15, f"the pod to answer on 127.0.0.1:{port}") == "hello from web\n"

    lite_cluster.apply(web_pod("web-two", port))
    refused = lite_cluster.wait_pod("web-two", lambda p: p.get("status", {}).get("phase") == "Failed", 30,
                                    "the second pod to be refused")["status"]
    assert (refused["reason"], refused["message"]) == ("NodePorts", NODE_PORTS_MESSAGE)
    assert lite_cluster.containers("web-two") == []  # nothing of it ever ran

    def described() -> str | None:
        out = lite_cluster.kubectl("describe", "pod", "web-two").stdout
        return out if "held by pod default/web" in out else None

    description = wait_for(described, 30, "the refusal's event")
    assert f"hostPort {port}/TCP on 0.0.0.0 is held by pod default/web" in description
    row = lite_cluster.kubectl("get", "pod", "web-two", "--no-headers").stdout.split()
    assert row[:3] == ["web-two", "0/1", "NodePorts"]
    assert get(port) == "hello from web\n"  # the first keeps serving

    lite_cluster.kubectl("delete", "pod", "web", "--timeout=60s", timeout_s=90)
    wait_for(lambda: port_free(port), 15, f"port {port} to be free")
    lite_cluster.apply(web_pod("web-three", port, "127.0.0.1"))  # a new pod may hold it now (on one address)
    assert wait_for(lambda: get(port), 60, "the third pod to answer") == "hello from web-three\n"


def pid_of(cluster: LiteCluster, container_id: str) -> int:
    return cluster.docker.api.inspect_container(container_id)["State"]["Pid"]


def oom_score(pid: int) -> int:
    return int(Path(f"/proc/{pid}/oom_score_adj").read_text())


def test_containers_the_sandbox_and_the_agent_get_kubelets_oom_scores(lite_cluster: LiteCluster) -> None:
    best = busybox_pod("best")
    burst = busybox_pod("burst")
    burst["spec"]["containers"][0]["resources"] = {"requests": {"memory": "256Mi"}}
    sure = busybox_pod("sure")
    sure["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "100m", "memory": "64Mi"}}
    lite_cluster.apply(best, burst, sure)
    lite_cluster.wait_running("best", "burst", "sure")
    assert {name: lite_cluster.cloud_pod(name)["status"]["qosClass"] for name in ("best", "burst", "sure")} == {
        "best": "BestEffort", "burst": "Burstable", "sure": "Guaranteed"}

    floor = node_oom_score_floor()  # without CAP_SYS_RESOURCE (some CI sandboxes), nothing goes below it
    capacity = psutil.virtual_memory().total
    expected = {"best": 1000, "burst": 1000 - 1000 * 256 * 2**20 // capacity, "sure": max(-997, floor)}
    scores = {name: oom_score(pid_of(lite_cluster, lite_cluster.running_ids(name)["app"])) for name in expected}
    assert scores == expected
    assert oom_score(pid_of(lite_cluster, lite_cluster.running_ids("best")["POD"])) == max(-998, floor)
    assert oom_score(lite_cluster.worker.process.pid) == max(AGENT_OOM_SCORE_ADJ, floor)


def test_a_fork_loop_is_held_at_the_pid_limit_while_other_pods_work(edge_cluster: LiteCluster) -> None:
    limit = 24
    edge_cluster.extra_env["EDGEWORKERS_POD_PIDS_LIMIT"] = str(limit)
    edge_cluster.start_agent()
    # busybox's sh gives up at its first failed fork: the container's main process (sleep) outlives the loop.
    edge_cluster.apply(busybox_pod("forks", "(while :; do sleep 600 & sleep 0.05; done) & exec sleep 3600"))
    bomb = edge_cluster.wait_running("forks")
    app = edge_cluster.running_ids("forks")["app"]
    assert edge_cluster.docker.api.inspect_container(app)["HostConfig"]["PidsLimit"] == limit

    def processes() -> int:
        """The container's tasks as its pids cgroup counts them (zombies not yet reaped included)."""
        for parent in (f"pids/docker/{app}", f"docker/{app}", f"system.slice/docker-{app}.scope"):
            counter = Path("/sys/fs/cgroup") / parent / "pids.current"
            if counter.exists():
                return int(counter.read_text())
        raise AssertionError(f"no pids cgroup found for container {app}")

    wait_for(lambda: processes() == limit, 30, f"the fork loop to reach {limit} processes")
    hold_for(lambda: processes() == limit, 3, "the PID limit")
    assert "can't fork" in edge_cluster.kubectl("logs", "forks").stdout  # the loop met the limit

    edge_cluster.apply(busybox_pod("calm", "echo calm; sleep 3600"))
    edge_cluster.wait_running("calm")
    echoed = edge_cluster.kubectl("exec", "calm", "--", "sh", "-c", "echo forked fine")
    assert echoed.stdout == "forked fine\n"
    assert edge_cluster.cloud_pod("forks")["status"]["phase"] == bomb["forks"]["status"]["phase"] == "Running"
