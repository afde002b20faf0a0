"""The PLEG on real Docker and Redis: a dead container is seen within a relist and its pod synced by a real worker,
so the restart policy and back-off act on it; orphans are cleaned up by their job."""
from __future__ import annotations

import time

from edgeworkers.metamanager.epoch import Epoch
from edgeworkers.metamanager.store import POD
from edgeworkers.pods import desired
from edgeworkers.runtime import labels
from tests.integration.queue.queuekit import busybox_pod, node_containers
from tests.integration.statuses import pod_status
from tests.polling import wait_for


def app_status(store, key: str) -> dict | None:
    status = pod_status(store, key)
    return status["containerStatuses"][0] if status and status.get("containerStatuses") else None


def running_app(docker_client, node_name: str, pod: str):
    running = [c for c in node_containers(docker_client, node_name, pod)
               if c.status == "running" and c.labels[labels.CONTAINER_NAME] == "app"]  # fmt: skip
    return running[0] if len(running) == 1 else None


def test_a_killed_container_is_restarted_with_its_restart_count_raised(
    agent_processes, store, send, docker_client, node_name
) -> None:
    agent_processes()
    desired.apply_pod(store, send, busybox_pod("web"))
    first = wait_for(lambda: running_app(docker_client, node_name, "web"), 60, "the app running")
    wait_for(lambda: (s := app_status(store, "default/web")) and "running" in s["state"], 30, "status running")

    first.kill()
    killed_at = time.monotonic()
    second = wait_for(
        lambda: (c := running_app(docker_client, node_name, "web")) and c.id != first.id and c, 10, "a new app"
    )
    # The first restart has no back-off (as kubelet's): within a relist period plus a sync.
    assert time.monotonic() - killed_at < 2 + 1
    assert second.labels[labels.RESTART_COUNT] == "1"
    status = wait_for(
        lambda: (s := app_status(store, "default/web")) and s["restartCount"] == 1 and "running" in s["state"] and s,
        10, "restartCount 1 in the status",
    )  # fmt: skip
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["containerID"] == f"docker://{second.id}"
    assert pod_status(store, "default/web")["phase"] == "Running"


def test_exit_3_under_never_is_failed_with_exit_code_3_reason_error(agent_processes, store, send) -> None:
    agent_processes()
    desired.apply_pod(store, send, busybox_pod("once", "sleep 1; exit 3", restartPolicy="Never"))
    status = wait_for(
        lambda: (s := pod_status(store, "default/once")) and s["phase"] == "Failed" and s, 30, "phase Failed"
    )
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert status["containerStatuses"][0]["restartCount"] == 0
    assert status["containerStatuses"][0]["ready"] is False


def test_a_container_that_exits_at_once_backs_off_longer_each_time(agent_processes, store, send) -> None:
    agent_processes()  # back-off 1 s doubling to 8 s (FAST)
    desired.apply_pod(store, send, busybox_pod("crash", "exit 1"))
    seen: dict[int, str] = {}  # restart count -> the CrashLoopBackOff message seen while at that count

    def observe() -> bool:
        status = app_status(store, "default/crash")
        if status and "waiting" in status["state"] and status["state"]["waiting"]["reason"] == "CrashLoopBackOff":
            seen[status["restartCount"]] = status["state"]["waiting"]["message"]
        return bool(status and status["restartCount"] >= 4)

    wait_for(observe, 40, "four restarts", interval_s=0.1)
    backoffs = [message.split()[1] for _, message in sorted(seen.items())]
    assert backoffs[:3] == ["1s", "2s", "4s"], seen
    assert pod_status(store, "default/crash")["phase"] == "Running"  # restarting, as kubectl shows it


def test_the_containers_of_a_pod_no_longer_desired_are_removed(
    agent_processes, store, send, docker_client, node_name
) -> None:
    agent_processes(EDGEWORKERS_DEFAULT_GRACE_PERIOD_S="1")  # an unknown pod's grace period (`sleep` ignores TERM)
    desired.apply_pod(store, send, busybox_pod("gone"))
    wait_for(lambda: running_app(docker_client, node_name, "gone"), 60, "the app running")
    Epoch(store.redis).establish()  # as the bridge's first list does: MetaManager holds what the cloud wants
    store.delete(POD, "default", "gone")  # as if its delete was missed while the agent was down: no task

    wait_for(lambda: node_containers(docker_client, node_name, "gone") == [], 30, "the orphan's containers removed")
