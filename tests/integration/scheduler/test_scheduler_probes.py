"""Probes on real Docker and Redis, run by the real scheduler, acted on by a real worker: an exec liveness probe
restarts its container, an http readiness probe toggles Ready, tcp probes, a startup probe holds the others."""
from __future__ import annotations

from typing import Any

from edgeworkers.pods import desired
from edgeworkers.runtime import labels
from tests.integration.queue.queuekit import busybox_pod, node_containers
from tests.integration.scheduler.conftest import free_port, hold
from tests.integration.statuses import pod_status
from tests.polling import wait_for


def probe(**action: Any) -> dict[str, Any]:
    return {**action, "periodSeconds": 1, "failureThreshold": 1}


def app_status(store, key: str) -> dict[str, Any] | None:
    status = pod_status(store, key)
    return status["containerStatuses"][0] if status and status.get("containerStatuses") else None


def condition(store, key: str, kind: str) -> str | None:
    status = pod_status(store, key) or {}
    return next((c["status"] for c in status.get("conditions", []) if c["type"] == kind), None)


def exec_in(docker_client, node_name: str, pod: str, command: str) -> None:
    app = next(c for c in node_containers(docker_client, node_name, pod)
               if c.status == "running" and c.labels[labels.CONTAINER_NAME] == "app")  # fmt: skip
    assert app.exec_run(["sh", "-c", command]).exit_code == 0


def test_an_exec_liveness_probe_whose_file_disappears_restarts_the_container(
    agent_processes, store, send, docker_client, node_name
) -> None:
    agent_processes()
    pod = busybox_pod("live", "touch /tmp/healthy; sleep 3600")
    pod["spec"]["containers"][0]["livenessProbe"] = probe(exec={"command": ["cat", "/tmp/healthy"]})
    desired.apply_pod(store, send, pod)
    wait_for(lambda: (s := app_status(store, "default/live")) and "running" in s["state"], 60, "running")
    hold(lambda: app_status(store, "default/live")["restartCount"] == 0, 2.5, "a healthy container left alone")

    exec_in(docker_client, node_name, "live", "rm /tmp/healthy")
    status = wait_for(
        lambda: (s := app_status(store, "default/live")) and s["restartCount"] == 1 and "running" in s["state"] and s,
        15, "restarted once",
    )  # fmt: skip
    assert status["lastState"]["terminated"]["exitCode"] == 137  # killed (grace 0)
    hold(lambda: app_status(store, "default/live")["restartCount"] == 1, 2.5, "the new instance healthy")


def test_an_http_readiness_probe_toggles_ready(agent_processes, store, send, docker_client, node_name) -> None:
    agent_processes(EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK="true")
    port = free_port()
    pod = busybox_pod("web", f"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www",
                      hostNetwork=True)  # fmt: skip
    pod["spec"]["containers"][0]["readinessProbe"] = probe(httpGet={"path": "/index.html", "port": port})
    desired.apply_pod(store, send, pod)
    wait_for(lambda: condition(store, "default/web", "Ready") == "True", 60, "Ready")
    assert app_status(store, "default/web")["ready"] is True

    exec_in(docker_client, node_name, "web", "rm /www/index.html")  # 404 from now on
    wait_for(lambda: condition(store, "default/web", "Ready") == "False", 10, "not Ready")
    status = pod_status(store, "default/web")
    assert status["phase"] == "Running" and status["containerStatuses"][0]["ready"] is False
    assert status["containerStatuses"][0]["restartCount"] == 0  # readiness never restarts

    exec_in(docker_client, node_name, "web", "echo ok > /www/index.html")
    wait_for(lambda: condition(store, "default/web", "Ready") == "True", 10, "Ready again")


def test_tcp_probes_reach_the_pod_ip_and_see_a_listening_port_and_a_closed_one(agent_processes, store, send) -> None:
    agent_processes()
    listening = busybox_pod("open", "mkdir -p /www && exec httpd -f -p 8080 -h /www")  # on the pod's own IP
    listening["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": 8080}]
    listening["spec"]["containers"][0]["readinessProbe"] = probe(tcpSocket={"port": "web"})
    refused = busybox_pod("shut", "sleep 3600")
    refused["spec"]["containers"][0]["readinessProbe"] = probe(tcpSocket={"port": 8080})
    desired.apply_pod(store, send, listening)
    desired.apply_pod(store, send, refused)

    wait_for(lambda: condition(store, "default/open", "Ready") == "True", 60, "the listening pod Ready")
    wait_for(lambda: (s := app_status(store, "default/shut")) and "running" in s["state"], 60, "the other running")
    hold(lambda: condition(store, "default/shut", "Ready") == "False", 2.5, "the closed port's pod not Ready")


def test_a_startup_probe_holds_liveness_until_it_succeeds(agent_processes, store, send, docker_client, node_name):
    agent_processes()
    pod = busybox_pod("slow", "sleep 3600")
    container = pod["spec"]["containers"][0]
    container["startupProbe"] = {"exec": {"command": ["test", "-f", "/tmp/started"]}, "periodSeconds": 1,
                                 "failureThreshold": 60}  # fmt: skip
    # Would kill the container at once if it ran before the startup probe succeeded.
    container["livenessProbe"] = probe(exec={"command": ["test", "-f", "/tmp/started"]})
    desired.apply_pod(store, send, pod)
    wait_for(lambda: (s := app_status(store, "default/slow")) and "running" in s["state"], 60, "running")

    hold(lambda: (s := app_status(store, "default/slow"))["restartCount"] == 0 and not s["started"] and not s["ready"],
         3, "not started, not ready, not killed")  # fmt: skip
    exec_in(docker_client, node_name, "slow", "touch /tmp/started")
    wait_for(lambda: (s := app_status(store, "default/slow")) and s["started"] and s["ready"], 10, "started and ready")
    hold(lambda: app_status(store, "default/slow")["restartCount"] == 0, 2.5, "liveness passing now")
