"""PodStatus from runtime containers: phase, conditions, container statuses, QoS."""

from __future__ import annotations

from typing import Any

import pytest

from edgeworkers.k8s.timefmt import format_time
from edgeworkers.status.podstatus import compute_pod_status, pod_phase, qos_class
from tests.unit.pods.podkit import CREATED, EXITED, RUNNING, T0, container, ctr, make_pod


def running_(name: str = "app") -> dict[str, Any]:
    return {"name": name, "state": {"running": {}}, "lastState": {}}


def terminated(code: int, name: str = "app") -> dict[str, Any]:
    return {"name": name, "state": {"terminated": {"exitCode": code}}, "lastState": {}}


def waiting(reason: str = "ContainerCreating", last_code: int | None = None, name: str = "app") -> dict[str, Any]:
    last = {} if last_code is None else {"terminated": {"exitCode": last_code}}
    return {"name": name, "state": {"waiting": {"reason": reason}}, "lastState": last}


@pytest.mark.parametrize(
    ("policy", "inits", "apps", "phase"),
    [
        ("Always", [], [waiting()], "Pending"),
        ("Always", [], [running_()], "Running"),
        ("Always", [], [running_(), waiting()], "Pending"),
        ("Always", [], [running_(), terminated(0)], "Running"),
        ("Always", [], [terminated(0)], "Running"),  # about to restart
        ("Always", [], [waiting("CrashLoopBackOff", 1)], "Running"),
        ("OnFailure", [], [terminated(0), terminated(0)], "Succeeded"),
        ("OnFailure", [], [terminated(0), terminated(1)], "Running"),
        ("Never", [], [terminated(0), terminated(0)], "Succeeded"),
        ("Never", [], [terminated(0), terminated(2)], "Failed"),
        ("Never", [], [running_(), terminated(2)], "Running"),
        ("Always", [running_("i")], [waiting("PodInitializing")], "Pending"),
        ("Always", [terminated(0, "i")], [running_()], "Running"),
        ("OnFailure", [waiting("CrashLoopBackOff", 1, "i")], [waiting("PodInitializing")], "Pending"),
        ("Never", [terminated(1, "i")], [waiting("PodInitializing")], "Failed"),
        ("Always", [], [waiting("ContainerStatusUnknown")], "Pending"),
    ],
)
def test_pod_phase(policy: str, inits: list, apps: list, phase: str) -> None:
    assert pod_phase(policy, inits, apps) == phase


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ([{}], "BestEffort"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
        ([{"requests": {"cpu": "100m"}}], "Burstable"),
        ([{"limits": {"cpu": "1"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}], "Burstable"),
    ],
)
def test_qos_class(resources: list[dict], qos: str) -> None:
    pod = make_pod(containers=[container(f"c{i}", resources=r) for i, r in enumerate(resources)])
    assert qos_class(pod) == qos


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


POD = make_pod(init=[container("init")], containers=[container("app")])


def test_a_running_pod() -> None:
    containers = [
        ctr("POD"),
        ctr("init", EXITED, init=True, exit_code=0, created=1, finished=2),
        ctr("app", RUNNING, restarts=2, created=3),
        ctr("app", EXITED, restarts=1, exit_code=1, created=2, finished=3),
    ]
    status = compute_pod_status(POD, containers, {}, T0 + 10, "10.88.0.2", "192.0.2.1")
    assert status["phase"] == "Running"
    assert (status["podIP"], status["podIPs"], status["hostIP"], status["hostIPs"]) == (
        "10.88.0.2", [{"ip": "10.88.0.2"}], "192.0.2.1", [{"ip": "192.0.2.1"}]
    )  # fmt: skip
    assert status["startTime"] == format_time(T0)
    assert status["qosClass"] == "BestEffort"
    assert {k: c["status"] for k, c in conditions(status).items()} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True",
        "PodScheduled": "True",
    }  # fmt: skip
    [app] = status["containerStatuses"]
    assert app == {
        "name": "app",
        "state": {"running": {"startedAt": format_time(T0 + 3)}},
        "lastState": {"terminated": {
            "exitCode": 1, "reason": "Error", "startedAt": format_time(T0 + 2), "finishedAt": format_time(T0 + 3),
            "containerID": "docker://uid-1-app-1-exited",
        }},
        "ready": True,
        "restartCount": 2,
        "image": "busybox",
        "imageID": "docker://sha256:1",
        "started": True,
        "containerID": "docker://uid-1-app-2-running",
    }  # fmt: skip
    [init] = status["initContainerStatuses"]
    assert init["ready"] and init["state"]["terminated"]["exitCode"] == 0 and not init["started"]


def test_a_pod_initializing() -> None:
    status = compute_pod_status(POD, [ctr("POD"), ctr("init", RUNNING, init=True)], {}, T0, "10.88.0.2", "h")
    assert status["phase"] == "Pending"
    assert conditions(status)["Initialized"] == {
        "type": "Initialized", "status": "False", "lastProbeTime": None, "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [init]", "lastTransitionTime": format_time(T0),
    }  # fmt: skip
    assert conditions(status)["Ready"]["message"] == "containers with unready status: [app]"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_waiting_reasons_from_the_sync_show_with_the_last_termination() -> None:
    pod = make_pod()
    crashed = ctr("app", EXITED, restarts=4, exit_code=2, created=1, finished=2)
    waiting_ = {"app": ("CrashLoopBackOff", "back-off 40s restarting failed container=app pod=web_default(uid-1)")}
    status = compute_pod_status(pod, [ctr("POD"), crashed], waiting_, T0 + 5, "ip", "h")
    [app] = status["containerStatuses"]
    assert app["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": waiting_["app"][1]}}
    assert app["lastState"]["terminated"]["exitCode"] == 2 and app["restartCount"] == 4 and not app["ready"]
    assert status["phase"] == "Running"


def test_a_pod_with_no_container_yet() -> None:
    pod = make_pod()
    status = compute_pod_status(pod, [], {"app": ("ErrImageNeverPull", "not present")}, T0, None, "h")
    assert status["phase"] == "Pending" and "podIP" not in status
    assert status["containerStatuses"][0] == {
        "name": "app", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}},
        "lastState": {}, "ready": False, "restartCount": 0, "image": "busybox", "imageID": "", "started": False,
    }  # fmt: skip
    assert conditions(status)["PodReadyToStartContainers"]["status"] == "False"


def test_a_succeeded_pod_is_not_ready_because_completed() -> None:
    pod = make_pod(restart="Never")
    status = compute_pod_status(
        pod, [ctr("POD", EXITED, exit_code=0), ctr("app", EXITED, exit_code=0)], {}, T0, None, "h"
    )
    assert status["phase"] == "Succeeded"
    assert conditions(status)["Ready"]["reason"] == "PodCompleted"
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_transition_times_and_start_time_are_kept_while_unchanged() -> None:
    pod = make_pod()
    first = compute_pod_status(pod, [ctr("POD"), ctr("app", CREATED)], {}, T0, "ip", "h")
    second = compute_pod_status(pod, [ctr("POD"), ctr("app")], {}, T0 + 60, "ip", "h", previous=first)
    assert conditions(second)["PodScheduled"]["lastTransitionTime"] == format_time(T0)
    assert conditions(second)["Ready"]["lastTransitionTime"] == format_time(T0 + 60)
    assert second["startTime"] == first["startTime"]


PROBE = {"exec": {"command": ["true"]}}
APP_ID = "uid-1-app-0-running"


@pytest.mark.parametrize(
    ("probes", "results", "started", "ready"),
    [
        ({}, None, True, True),  # no probes: running is started and ready
        ({"readinessProbe": PROBE}, None, True, False),  # not ready until the first success
        ({"readinessProbe": PROBE}, {"readiness": True}, True, True),
        ({"readinessProbe": PROBE}, {"readiness": False}, True, False),
        ({"startupProbe": PROBE}, None, False, False),  # not started, so not ready
        ({"startupProbe": PROBE}, {"startup": True}, True, True),
        ({"startupProbe": PROBE, "readinessProbe": PROBE}, {"startup": True}, True, False),
        ({"startupProbe": PROBE, "readinessProbe": PROBE}, {"startup": True, "readiness": True}, True, True),
        ({"livenessProbe": PROBE}, None, True, True),  # liveness says nothing of readiness
    ],
)
def test_readiness_and_started_follow_the_probe_results(probes, results, started, ready) -> None:
    pod = make_pod(containers=[container("app", **probes)])
    status = compute_pod_status(pod, [ctr("POD"), ctr("app")], {}, T0, "ip", "h",
                                probes={APP_ID: results} if results else None)  # fmt: skip
    (app,) = status["containerStatuses"]
    assert (app["started"], app["ready"]) == (started, ready)
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == conditions["ContainersReady"] == ("True" if ready else "False")
    assert status["phase"] == "Running"
