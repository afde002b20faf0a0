"""Ephemeral containers on FakeRuntime (kubectl debug): started once in the running pod, in the PID namespace of their
target, never restarted, reported in ephemeralContainerStatuses, and changing nothing of the pod's own containers."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Pod
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerState
from tests.unit.clock import Clock
from tests.unit.pods.podkit import T0, make_pod

CHANGING = {"create_sandbox", "create_container", "start_container", "stop_container", "remove_container"}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def runtime(clock: Clock) -> FakeRuntime:
    return FakeRuntime(node_name="n1", clock=clock, images=["edgeworkers/pause:latest", "busybox"])


@pytest.fixture
def syncer(runtime: FakeRuntime, clock: Clock, tmp_path: Path) -> PodSyncer:
    return PodSyncer(runtime, MemoryBackoffStore(), Settings(node_name="n1", data_dir=tmp_path), clock)


def debugged(pod: Pod, **fields) -> Pod:
    body = pod.to_dict()
    body["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                            "stdin": True, "tty": True, **fields}]
    return Pod.from_dict(body)


def instances(runtime: FakeRuntime, name: str):
    return [c for c in runtime.list_containers() if c.name == name]


def test_an_added_ephemeral_container_starts_in_its_targets_pid_namespace_and_nothing_else_changes(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    pod = make_pod()
    syncer.sync(pod.key, pod)
    [app] = instances(runtime, "app")
    before = len(runtime.calls)
    status = syncer.sync(pod.key, debugged(pod, targetContainerName="app")).status
    changes = [call for call in runtime.calls[before:] if call[0] in CHANGING]
    assert [call[0] for call in changes] == ["create_container", "start_container"]
    [debugger] = instances(runtime, "debugger")
    assert debugger.is_ephemeral and debugger.state == ContainerState.RUNNING
    config = runtime.config_of(debugger.id)
    assert config.pid_target == app.id and config.stdin and config.tty
    assert instances(runtime, "app") == [app]  # the app container is not restarted
    [ephemeral] = status["ephemeralContainerStatuses"]
    assert ephemeral["name"] == "debugger" and "running" in ephemeral["state"] and ephemeral["ready"] is False
    assert "started" not in ephemeral and ephemeral["containerID"] == str(debugger.id)
    assert status["phase"] == "Running" and [s["name"] for s in status["containerStatuses"]] == ["app"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"


def test_an_ephemeral_container_that_exited_is_never_started_again(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = debugged(make_pod())
    syncer.sync(pod.key, pod)
    [debugger] = instances(runtime, "debugger")
    runtime.exit(debugger.id, 0)
    for _ in range(3):
        status = syncer.sync(pod.key, pod).status
    assert len(instances(runtime, "debugger")) == 1
    assert status["ephemeralContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert status["phase"] == "Running"


def test_a_target_that_does_not_run_leaves_the_ephemeral_container_waiting(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    pod = make_pod(restart="Never")
    syncer.sync(pod.key, pod)
    runtime.exit(instances(runtime, "app")[0].id, 1)
    status = syncer.sync(pod.key, debugged(pod, targetContainerName="app")).status
    assert not instances(runtime, "debugger")
    assert status["ephemeralContainerStatuses"][0]["state"]["waiting"] == {
        "reason": "CreateContainerConfigError", "message": "unable to find target container app"}


def test_a_pod_being_deleted_takes_its_ephemeral_containers_with_it(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = debugged(make_pod())
    syncer.sync(pod.key, pod)
    assert instances(runtime, "debugger")
    assert syncer.sync(pod.key, None).gone
    assert runtime.list_containers() == []
