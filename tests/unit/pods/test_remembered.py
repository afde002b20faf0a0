"""The pod's last status is the node's memory of what Docker lost (``pods.remembered``): PodSyncer on FakeRuntime, each
sync handed the status the one before stored, as ``pods.reconcile`` does, while the test removes dead containers as
``docker container prune`` or the container GC would."""
# ruff: noqa: F811 - the fixtures of test_sync.py, imported, are redefined as the tests' parameters
from __future__ import annotations

import pytest

from edgeworkers.k8s.pod import Pod
from edgeworkers.pods.remembered import is_terminal, remembered_containers
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerState
from tests.unit.clock import Clock
from tests.unit.pods.podkit import container, make_pod
from tests.unit.pods.test_sync import backoff, clock, live, only, runtime, statuses, syncer  # noqa: F401 - fixtures


def prune(runtime: FakeRuntime) -> None:
    """``docker container prune``: every container not running goes."""
    for dead in [c for c in runtime.list_containers() if c.state != ContainerState.RUNNING]:
        runtime.remove_container(dead.id)


@pytest.mark.parametrize(("policy", "code", "phase"), [("Never", 0, "Succeeded"), ("Never", 2, "Failed"),
                                                       ("OnFailure", 0, "Succeeded")])  # fmt: skip
def test_a_finished_pod_whose_containers_were_pruned_stays_finished_and_never_runs_again(
    syncer: PodSyncer, runtime: FakeRuntime, policy: str, code: int, phase: str
) -> None:
    pod = make_pod(restart=policy, init=[container("init1")])
    status = syncer.sync(pod.key, pod).status
    runtime.exit(only(runtime, "init1").id, 0)
    status = syncer.sync(pod.key, pod, status).status
    runtime.exit(only(runtime, "app").id, code)
    done = syncer.sync(pod.key, pod, status).status
    assert done["phase"] == phase
    prune(runtime)
    assert runtime.list_containers() == []

    for _ in range(3):
        again = syncer.sync(pod.key, pod, done)
        assert again.status == done and again.requeue_after is None
    assert runtime.list_containers() == []  # nothing created, nothing started
    assert statuses(done)["app"]["state"]["terminated"]["exitCode"] == code


def test_a_terminal_status_from_the_cloud_counts_when_the_node_has_none(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(restart="Never")
    done = syncer.sync(pod.key, pod).status
    runtime.exit(only(runtime, "app").id, 0)
    done = syncer.sync(pod.key, pod, done).status
    prune(runtime)
    from_cloud = Pod.from_dict({**pod.to_dict(), "status": done})  # as the cloud shows it: the status sent up
    assert syncer.sync(pod.key, from_cloud, None).status["phase"] == "Succeeded"  # Redis lost the node's statuses
    assert runtime.list_containers() == []


def test_a_crash_looping_container_pruned_keeps_its_restart_count_and_back_off(
    syncer: PodSyncer, runtime: FakeRuntime, clock: Clock
) -> None:
    pod = make_pod()
    status = syncer.sync(pod.key, pod).status
    for _ in range(3):  # restarts 1 (at once), 2 (after 10 s), 3 (after 20 s)
        clock.advance(1)
        runtime.exit(live(runtime, "app")[0].id, 1)
        result = syncer.sync(pod.key, pod, status)
        if result.requeue_after:
            clock.advance(result.requeue_after)
            result = syncer.sync(pod.key, pod, result.status)
        status = result.status
    clock.advance(1)
    runtime.exit(live(runtime, "app")[0].id, 1)
    waiting = syncer.sync(pod.key, pod, status)
    app = statuses(waiting.status)["app"]
    assert app["state"]["waiting"]["reason"] == "CrashLoopBackOff" and app["restartCount"] == 3
    assert waiting.requeue_after == pytest.approx(40)

    prune(runtime)  # the dead instance goes; the sandbox runs on
    clock.advance(5)
    still = syncer.sync(pod.key, pod, waiting.status)
    app = statuses(still.status)["app"]
    assert live(runtime, "app") == []  # not restarted before its back-off ends
    assert app["state"]["waiting"]["reason"] == "CrashLoopBackOff" and "back-off 40s" in app["state"]["waiting"]["message"]
    assert app["restartCount"] == 3 and app["lastState"]["terminated"]["exitCode"] == 1
    assert still.requeue_after == pytest.approx(35)

    clock.advance(35)
    restarted = syncer.sync(pod.key, pod, still.status)
    assert live(runtime, "app")[0].restart_count == 4
    assert statuses(restarted.status)["app"]["restartCount"] == 4


def test_a_container_gone_while_it_was_running_ended_unknown_and_follows_the_restart_policy(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    never = make_pod(restart="Never")
    status = syncer.sync(never.key, never).status
    runtime.remove_container(only(runtime, "app").id)  # died and was removed while the agent was away
    done = syncer.sync(never.key, never, status).status
    app = statuses(done)["app"]
    assert app["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert app["state"]["terminated"]["exitCode"] == 137
    assert done["phase"] == "Failed" and live(runtime) == []  # not run twice; the sandbox stopped

    always = make_pod(name="other", uid="uid-2")
    status = syncer.sync(always.key, always).status
    runtime.remove_container(only(runtime, "app").id)
    again = syncer.sync(always.key, always, status).status
    assert live(runtime, "app")[0].restart_count == 1  # restarted as after a crash
    assert statuses(again)["app"]["restartCount"] == 1


def test_a_pruned_init_container_that_succeeded_does_not_run_again(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(init=[container("init1")])
    status = syncer.sync(pod.key, pod).status
    runtime.exit(only(runtime, "init1").id, 0)
    status = syncer.sync(pod.key, pod, status).status
    prune(runtime)
    again = syncer.sync(pod.key, pod, status)
    assert [c.name for c in runtime.list_containers() if not c.is_sandbox] == ["app"]
    assert statuses(again.status, "initContainerStatuses")["init1"]["state"]["terminated"]["exitCode"] == 0
    assert again.status["phase"] == "Running"


def test_a_never_pods_container_that_ended_is_not_restarted_while_another_runs(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    pod = make_pod(restart="Never", containers=[container("a"), container("b")])
    status = syncer.sync(pod.key, pod).status
    runtime.exit(only(runtime, "a").id, 1)
    status = syncer.sync(pod.key, pod, status).status
    prune(runtime)
    status = syncer.sync(pod.key, pod, status).status
    assert [c.name for c in live(runtime) if not c.is_sandbox] == ["b"] and status["phase"] == "Running"
    runtime.exit(only(runtime, "b").id, 0)
    assert syncer.sync(pod.key, pod, status).status["phase"] == "Failed"


def test_stand_ins_only_for_containers_that_ran_and_that_docker_lost() -> None:
    pod = make_pod(containers=[container("ran"), container("waits"), container("gone")])
    previous = {"containerStatuses": [
        {"name": "ran", "restartCount": 2, "containerID": "docker://abc",
         "state": {"terminated": {"exitCode": 3, "startedAt": "2027-01-15T08:00:00Z",
                                  "finishedAt": "2027-01-15T08:00:05Z", "containerID": "docker://abc"}}},
        {"name": "waits", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}},
        {"name": "removed-from-spec", "state": {"terminated": {"exitCode": 0}}},
    ]}  # fmt: skip
    [ran] = remembered_containers(pod, [], previous)
    assert (ran.name, ran.restart_count, ran.exit_code, str(ran.id)) == ("ran", 2, 3, "docker://abc")
    assert ran.state == ContainerState.EXITED and ran.finished_at is not None
    assert remembered_containers(pod, [], None) == []
    assert is_terminal({"phase": "Failed"}) and not is_terminal({"phase": "Running"}) and not is_terminal(None)

