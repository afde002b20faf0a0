"""Nothing trusted across a restart, on real Docker and Redis with a real worker and scheduler: a finished pod whose
dead containers are pruned stays finished, a crash-looping pod whose dead container is pruned keeps its restart count,
and a restarted agent turns a ready pod whose readiness probe now fails not ready."""
from __future__ import annotations

from typing import Any

import docker

from edgeworkers.pods import desired
from edgeworkers.runtime import labels
from tests.integration.queue.queuekit import busybox_pod, node_containers
from tests.integration.scheduler.conftest import hold
from tests.integration.scheduler.test_scheduler_probes import app_status, condition, exec_in, probe
from tests.integration.statuses import pod_status
from tests.polling import wait_for


def prune(docker_client: docker.DockerClient, node_name: str, pod: str) -> int:
    """``docker container prune``, limited to this test's containers of ``pod``: every one not running goes."""
    dead = [c for c in node_containers(docker_client, node_name, pod) if c.status != "running"]
    for container in dead:
        container.remove(force=True)
    return len(dead)


def test_a_finished_never_pod_whose_containers_are_pruned_stays_succeeded_and_never_runs_again(
    agent_processes, store, send, docker_client, node_name
) -> None:
    agent_processes()
    pod = busybox_pod("job", "echo done", restartPolicy="Never")
    desired.apply_pod(store, send, pod)
    wait_for(lambda: (pod_status(store, "default/job") or {}).get("phase") == "Succeeded", 60, "Succeeded")
    wait_for(lambda: all(c.status != "running" for c in node_containers(docker_client, node_name, "job")), 30,
             "the finished pod's sandbox stopped")  # fmt: skip
    assert prune(docker_client, node_name, "job") == 2  # its sandbox and its app container

    desired.apply_pod(store, send, pod)  # a sync for sure (the PLEG also sees the containers go)
    hold(lambda: node_containers(docker_client, node_name, "job") == [], 5, "nothing of the pod started again")
    status = pod_status(store, "default/job")
    assert status["phase"] == "Succeeded"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def restart_counts(docker_client: docker.DockerClient, node_name: str) -> list[int]:
    return [int(c.labels[labels.RESTART_COUNT]) for c in node_containers(docker_client, node_name, "crash")
            if c.labels.get(labels.CONTAINER_NAME) == "app"]  # fmt: skip


def test_a_crash_looping_pod_whose_dead_container_is_pruned_keeps_its_restart_count(
    agent_processes, store, send, docker_client, node_name
) -> None:
    agent_processes()
    desired.apply_pod(store, send, busybox_pod("crash", "exit 1"))
    waiting = wait_for(
        lambda: (s := app_status(store, "default/crash")) and s["restartCount"] >= 2
        and s["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff" and s, 60, "in CrashLoopBackOff",
    )  # fmt: skip
    count = waiting["restartCount"]
    prune(docker_client, node_name, "crash")

    def counted() -> dict[str, Any] | None:
        status = app_status(store, "default/crash")
        assert status["restartCount"] >= count, status  # never back to 0
        return status if status["restartCount"] > count else None

    wait_for(counted, 30, "restarted again, counting on")
    assert min(restart_counts(docker_client, node_name)) > count  # the new instance's label counts on too


def test_a_restarted_agent_turns_a_ready_pod_with_a_failing_readiness_probe_not_ready(
    agent_processes, store, send, docker_client, node_name
) -> None:
    worker, scheduler = agent_processes()
    pod = busybox_pod("web", "touch /tmp/ready; sleep 3600")
    pod["spec"]["containers"][0]["readinessProbe"] = probe(exec={"command": ["cat", "/tmp/ready"]})
    desired.apply_pod(store, send, pod)
    wait_for(lambda: condition(store, "default/web", "Ready") == "True", 60, "Ready")

    scheduler.stop()  # the agent goes (its prober with it) ...
    worker.stop()
    exec_in(docker_client, node_name, "web", "rm /tmp/ready")  # ... and meanwhile the probe starts failing
    agent_processes()  # ... and comes back
    wait_for(lambda: condition(store, "default/web", "Ready") == "False", 20, "not Ready soon after the restart")
    assert app_status(store, "default/web")["ready"] is False
