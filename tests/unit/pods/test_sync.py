"""PodSyncer on FakeRuntime: each test drives syncs with a controllable clock and reads runtime state."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.convert import container_config, pod_ref
from edgeworkers.pods.sync import PodSyncer, SyncResult
from edgeworkers.runtime.errors import ContainerCreateError, RuntimeUnavailable
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import Container, ContainerState, PortMapping
from edgeworkers.volumes.downward import PodFacts
from tests.unit.clock import Clock
from tests.unit.pods.podkit import T0, container, make_pod


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def runtime(clock: Clock) -> FakeRuntime:
    return FakeRuntime(node_name="n1", clock=clock, images=["edgeworkers/pause:latest", "busybox", "busybox:1.28"])


@pytest.fixture
def backoff() -> MemoryBackoffStore:
    return MemoryBackoffStore()


@pytest.fixture
def syncer(runtime: FakeRuntime, backoff: MemoryBackoffStore, clock: Clock, tmp_path: Path) -> PodSyncer:
    return PodSyncer(runtime, backoff, Settings(node_name="n1", data_dir=tmp_path), clock)


def live(runtime: FakeRuntime, name: str | None = None) -> list[Container]:
    return [
        c for c in runtime.list_containers()
        if c.state == ContainerState.RUNNING and (name is None or c.name == name)
    ]  # fmt: skip


def only(runtime: FakeRuntime, name: str) -> Container:
    matches = [c for c in runtime.list_containers() if c.name == name]
    assert len(matches) == 1, matches
    return matches[0]


def statuses(status: dict, kind: str = "containerStatuses") -> dict[str, dict]:
    return {s["name"]: s for s in status[kind]}


def test_a_new_pod_gets_a_sandbox_and_its_containers_running(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(containers=[container("a", command=["sleep", "1"]), container("b")])
    result = syncer.sync(pod.key, pod)
    assert sorted(c.name for c in live(runtime)) == ["POD", "a", "b"]
    assert result.status["phase"] == "Running"
    assert {s["name"]: s["ready"] for s in result.status["containerStatuses"]} == {"a": True, "b": True}
    assert result.status["podIP"].startswith("10.88.")
    assert result.requeue_after is None


def test_a_second_sync_changes_nothing(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod()
    syncer.sync(pod.key, pod)
    before = len(runtime.calls)
    result = syncer.sync(pod.key, pod)
    changing = {"create_sandbox", "create_container", "start_container", "stop_container", "remove_container"}
    assert not [call for call in runtime.calls[before:] if call[0] in changing]
    assert result.status["phase"] == "Running"


def test_a_container_created_but_never_started_is_started_not_duplicated(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    pod = make_pod()
    runtime.fail("start_container", RuntimeUnavailable("dockerd went away"))
    with pytest.raises(RuntimeUnavailable):
        syncer.sync(pod.key, pod)  # the sandbox exists, "app" was created, its start failed
    assert only(runtime, "app").state == ContainerState.CREATED
    syncer.sync(pod.key, pod)
    app = only(runtime, "app")
    assert app.state == ContainerState.RUNNING
    assert len(runtime.calls_named("create_container")) == 1


def test_live_duplicates_of_a_container_are_removed_keeping_the_newest(
    syncer: PodSyncer, runtime: FakeRuntime, tmp_path: Path
) -> None:
    pod = make_pod()
    syncer.sync(pod.key, pod)
    config = container_config(pod, pod.spec.containers[0], tmp_path, restart_count=1)
    newer = runtime.create_container(only(runtime, "POD").id, pod_ref(pod), config)  # as a racing worker would
    runtime.start_container(newer)
    syncer.sync(pod.key, pod)
    assert [c.id for c in runtime.list_containers() if c.name == "app"] == [newer]
    assert len(runtime.calls_named("create_container")) == 2  # the first sync's and the racer's only


def test_an_image_change_recreates_only_that_container(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(containers=[container("a"), container("b")])
    syncer.sync(pod.key, pod)
    a, b = only(runtime, "a"), only(runtime, "b")
    changed = make_pod(containers=[container("a"), container("b", image="busybox:1.28")])
    result = syncer.sync(changed.key, changed)
    assert [c.id for c in live(runtime, "a")] == [a.id]
    new_b = live(runtime, "b")
    assert len(new_b) == 1 and new_b[0].id != b.id and new_b[0].image == "busybox:1.28"
    assert new_b[0].restart_count == 1
    assert statuses(result.status)["b"]["lastState"]["terminated"]["containerID"] == str(b.id)


@pytest.mark.parametrize(
    "change",
    [
        {"command": ["sleep", "10"]},
        {"args": ["-c", "true"]},
        {"env": [{"name": "A", "value": "2"}]},
        {"workingDir": "/tmp"},
        {"resources": {"limits": {"memory": "64Mi"}}},
        {"securityContext": {"runAsUser": 1000}},
        {"ports": [{"containerPort": 8080}]},
    ],
)
def test_a_spec_change_recreates_the_container(syncer: PodSyncer, runtime: FakeRuntime, change: dict) -> None:
    pod = make_pod(containers=[container("app", env=[{"name": "A", "value": "1"}])])
    syncer.sync(pod.key, pod)
    before = only(runtime, "app")
    changed = make_pod(containers=[container("app", **{"env": [{"name": "A", "value": "1"}], **change})])
    syncer.sync(changed.key, changed)
    assert live(runtime, "app")[0].id != before.id


def test_a_label_only_change_recreates_nothing(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(labels={"app": "web"})
    syncer.sync(pod.key, pod)
    ids = {c.id for c in runtime.list_containers()}
    relabelled = make_pod(labels={"app": "web", "tier": "front"})
    syncer.sync(relabelled.key, relabelled)
    assert {c.id for c in runtime.list_containers()} == ids
    assert not runtime.calls_named("stop_container")


def test_init_containers_run_one_at_a_time_before_the_app_containers(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(init=[container("init1"), container("init2")])
    result = syncer.sync(pod.key, pod)
    assert [c.name for c in live(runtime) if not c.is_sandbox] == ["init1"]
    assert result.requeue_after is not None and result.status["phase"] == "Pending"
    assert statuses(result.status)["app"]["state"]["waiting"]["reason"] == "PodInitializing"
    syncer.sync(pod.key, pod)  # init1 still running: nothing new
    assert [c.name for c in live(runtime) if not c.is_sandbox] == ["init1"]
    runtime.exit(only(runtime, "init1").id, 0)
    syncer.sync(pod.key, pod)
    assert [c.name for c in live(runtime) if not c.is_sandbox] == ["init2"]
    runtime.exit(only(runtime, "init2").id, 0)
    result = syncer.sync(pod.key, pod)
    assert [c.name for c in live(runtime) if not c.is_sandbox] == ["app"]
    assert result.status["phase"] == "Running"
    initialized = next(c for c in result.status["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "True"


def test_a_failed_init_container_fails_the_pod_under_restart_policy_never(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    pod = make_pod(init=[container("init1")], restart="Never")
    syncer.sync(pod.key, pod)
    runtime.exit(only(runtime, "init1").id, 3)
    result = syncer.sync(pod.key, pod)
    assert result.status["phase"] == "Failed"
    assert live(runtime) == []  # the sandbox is stopped too
    again = syncer.sync(pod.key, pod)
    assert again.status["phase"] == "Failed" and live(runtime) == []
    assert "app" not in {c.name for c in runtime.list_containers()}


def test_a_failed_init_container_restarts_with_back_off(syncer: PodSyncer, runtime: FakeRuntime, clock: Clock) -> None:
    pod = make_pod(init=[container("init1")], restart="OnFailure")
    syncer.sync(pod.key, pod)
    runtime.exit(only(runtime, "init1").id, 1)
    syncer.sync(pod.key, pod)  # the first restart is immediate
    assert live(runtime, "init1")[0].restart_count == 1
    clock.advance(1)
    runtime.exit(live(runtime, "init1")[0].id, 1)
    result = syncer.sync(pod.key, pod)
    status = statuses(result.status, "initContainerStatuses")["init1"]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert result.requeue_after == pytest.approx(10)
    clock.advance(10)
    syncer.sync(pod.key, pod)
    assert live(runtime, "init1")[0].restart_count == 2


@pytest.mark.parametrize(
    ("policy", "exit_code", "restarted", "phase"),
    [
        ("Always", 0, True, "Running"),
        ("Always", 1, True, "Running"),
        ("OnFailure", 0, False, "Succeeded"),
        ("OnFailure", 1, True, "Running"),
        ("Never", 0, False, "Succeeded"),
        ("Never", 1, False, "Failed"),
    ],
)
def test_an_exited_container_follows_the_restart_policy(
    syncer: PodSyncer, runtime: FakeRuntime, policy: str, exit_code: int, restarted: bool, phase: str
) -> None:
    pod = make_pod(restart=policy)
    syncer.sync(pod.key, pod)
    runtime.exit(only(runtime, "app").id, exit_code)
    result = syncer.sync(pod.key, pod)
    assert bool(live(runtime, "app")) == restarted
    assert result.status["phase"] == phase
    if not restarted:
        assert live(runtime) == []  # a finished pod's sandbox is stopped
        assert syncer.sync(pod.key, pod).status["phase"] == phase  # and not started again


def test_crash_loop_back_off_doubles_and_the_restart_count_grows(
    syncer: PodSyncer, runtime: FakeRuntime, clock: Clock
) -> None:
    pod = make_pod()
    syncer.sync(pod.key, pod)
    waits = []
    for restarts in range(1, 6):
        clock.advance(1)
        runtime.exit(live(runtime, "app")[0].id, 1)
        result = syncer.sync(pod.key, pod)
        if not live(runtime, "app"):
            status = statuses(result.status)["app"]
            assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            assert status["lastState"]["terminated"]["exitCode"] == 1
            assert status["restartCount"] == restarts - 1
            waits.append(result.requeue_after)
            clock.advance(result.requeue_after)
            syncer.sync(pod.key, pod)
        assert live(runtime, "app")[0].restart_count == restarts
    assert waits == [10, 20, 40, 80]
    # kubelet keeps one dead instance per container
    assert len([c for c in runtime.list_containers() if c.name == "app"]) == 2


def test_back_off_resets_after_a_long_run(syncer: PodSyncer, runtime: FakeRuntime, clock: Clock) -> None:
    pod = make_pod()
    syncer.sync(pod.key, pod)
    runtime.exit(only(runtime, "app").id, 1)
    syncer.sync(pod.key, pod)  # restart 1, immediate
    clock.advance(1)
    runtime.exit(live(runtime, "app")[0].id, 1)
    assert syncer.sync(pod.key, pod).requeue_after == 10
    clock.advance(10)
    syncer.sync(pod.key, pod)
    clock.advance(600)  # ran ten minutes
    runtime.exit(live(runtime, "app")[0].id, 1)
    syncer.sync(pod.key, pod)
    assert live(runtime, "app")[0].restart_count == 3


def test_a_missing_image_with_pull_policy_never_is_err_image_never_pull(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    pod = make_pod(containers=[container("app", image="nothere:1", imagePullPolicy="Never")])
    result = syncer.sync(pod.key, pod)
    waiting = statuses(result.status)["app"]["state"]["waiting"]
    assert waiting == {
        "reason": "ErrImageNeverPull",
        "message": 'Container image "nothere:1" is not present with pull policy of Never',
    }
    assert result.status["phase"] == "Pending"
    assert not runtime.calls_named("pull_image")
    assert result.requeue_after is not None


def test_a_failed_pull_is_err_image_pull_then_image_pull_back_off(
    syncer: PodSyncer, runtime: FakeRuntime, clock: Clock
) -> None:
    pod = make_pod(containers=[container("app", image="remote/app:2")])
    first = syncer.sync(pod.key, pod)
    assert statuses(first.status)["app"]["state"]["waiting"]["reason"] == "ErrImagePull"
    assert first.requeue_after == 10
    clock.advance(5)
    second = syncer.sync(pod.key, pod)
    assert statuses(second.status)["app"]["state"]["waiting"] == {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "remote/app:2"',
    }
    assert len(runtime.calls_named("pull_image")) == 1
    clock.advance(5)
    third = syncer.sync(pod.key, pod)
    assert statuses(third.status)["app"]["state"]["waiting"]["reason"] == "ErrImagePull"
    assert third.requeue_after == 20
    runtime.add_to_registry("remote/app:2")
    clock.advance(20)
    assert syncer.sync(pod.key, pod).status["phase"] == "Running"


def test_pull_policy_always_falls_back_to_the_local_image(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(containers=[container("app", imagePullPolicy="Always")])
    result = syncer.sync(pod.key, pod)
    assert runtime.calls_named("pull_image") == [("pull_image", "busybox")]
    assert result.status["phase"] == "Running"


def test_a_missing_env_source_is_create_container_config_error(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    env = [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]
    pod = make_pod(containers=[container("app", env=env), container("ok")])
    result = syncer.sync(pod.key, pod)
    waiting = statuses(result.status)["app"]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert 'configmap "cm"' in waiting["message"]
    assert [c.name for c in live(runtime) if not c.is_sandbox] == ["ok"]


def test_an_engine_refusal_is_create_container_error(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod()
    runtime.fail("create_container", ContainerCreateError("invalid mount config"))
    result = syncer.sync(pod.key, pod)
    assert statuses(result.status)["app"]["state"]["waiting"] == {
        "reason": "CreateContainerError",
        "message": "invalid mount config",
    }
    assert syncer.sync(pod.key, pod).status["phase"] == "Running"


def test_delete_stops_and_removes_every_container_with_the_grace_period(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    pod = make_pod(containers=[container("a"), container("b")], init=[container("i")])
    syncer.sync(pod.key, pod)
    runtime.exit(only(runtime, "i").id, 0)
    syncer.sync(pod.key, pod)
    sandbox = only(runtime, "POD")
    deleting = pod.model_copy(deep=True)
    deleting.metadata.deletion_timestamp = "2027-01-15T08:00:00Z"
    deleting.metadata.deletion_grace_period_seconds = 7
    result = syncer.sync(pod.key, deleting)
    assert result.status is None
    assert runtime.list_containers() == []
    stops = runtime.calls_named("stop_container")
    assert {call[2] for call in stops} == {"7"}
    assert len(stops) == 3
    assert stops[-1][1] == str(sandbox.id)  # app containers first, the sandbox last


def test_a_missing_pod_removes_every_container_of_its_key_whatever_the_uid(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    first, other = make_pod(uid="u1"), make_pod(name="other", uid="u2")
    syncer.sync(first.key, first)
    syncer.sync(other.key, other)
    assert syncer.sync(first.key, None) == SyncResult(None, None, gone=True)
    assert {c.pod.key for c in runtime.list_containers()} == {"default/other"}


def test_a_new_uid_replaces_every_container_of_the_old_pod(
    syncer: PodSyncer, runtime: FakeRuntime, backoff: MemoryBackoffStore, clock: Clock
) -> None:
    old = make_pod(uid="u1")
    syncer.sync(old.key, old)
    runtime.exit(only(runtime, "app").id, 1)
    syncer.sync(old.key, old)
    new = make_pod(uid="u2")
    result = syncer.sync(new.key, new)
    assert {c.pod.uid for c in runtime.list_containers()} == {"u2"}
    assert statuses(result.status)["app"]["restartCount"] == 0
    assert backoff.get("u1", "app") is None


def test_a_dead_sandbox_restarts_the_pod_keeping_restart_counts(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    pod = make_pod(init=[container("init1")])
    syncer.sync(pod.key, pod)
    runtime.exit(only(runtime, "init1").id, 0)
    syncer.sync(pod.key, pod)
    app = only(runtime, "app")
    runtime.exit(only(runtime, "POD").id, 137)  # as after a reboot
    runtime.exit(app.id, 137)
    syncer.sync(pod.key, pod)
    sandbox = [c for c in runtime.list_containers() if c.is_sandbox]
    assert len(sandbox) == 1 and sandbox[0].state == ContainerState.RUNNING
    assert [c.name for c in live(runtime) if not c.is_sandbox] == ["init1"]  # init containers run again
    runtime.exit(live(runtime, "init1")[0].id, 0)
    syncer.sync(pod.key, pod)
    assert live(runtime, "app")[0].restart_count == app.restart_count + 1


def test_the_runtime_being_unavailable_escapes_for_a_retry(syncer: PodSyncer, runtime: FakeRuntime) -> None:
    runtime.unavailable = True
    pod = make_pod()
    with pytest.raises(RuntimeUnavailable):
        syncer.sync(pod.key, pod)


def test_empty_dir_volumes_are_made_and_mounted_and_removed_with_the_pod(
    syncer: PodSyncer, runtime: FakeRuntime, tmp_path: Path
) -> None:
    pod = make_pod(
        containers=[container("app", volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    syncer.sync(pod.key, pod)
    volume = tmp_path / "pods" / "uid-1" / "volumes" / "data"
    assert volume.is_dir()
    config = runtime.config_of(only(runtime, "app").id)
    etc = tmp_path / "pods" / "uid-1"
    assert [(m.host_path, m.container_path) for m in config.mounts if m.container_path != "/dev/termination-log"] == [
        (str(volume), "/data"), (str(etc / "resolv.conf"), "/etc/resolv.conf"), (str(etc / "etc-hosts"), "/etc/hosts")]
    syncer.sync(pod.key, None)
    assert not (tmp_path / "pods" / "uid-1").exists()


def test_the_sync_records_kubelets_events(runtime: FakeRuntime, backoff: MemoryBackoffStore, clock: Clock,
                                          tmp_path: Path) -> None:  # fmt: skip
    events: list[tuple[str, str, str]] = []
    syncer = PodSyncer(runtime, backoff, Settings(node_name="n1", data_dir=tmp_path), clock,
                       events=lambda pod, reason, message, kind: events.append((reason, message, kind)))  # fmt: skip
    pod = make_pod()
    syncer.sync(pod.key, pod)
    assert events == [("MissingClusterDNS", 'pod: "web_default(uid-1)". kubelet does not have ClusterDNS IP configured '
                       'and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.', "Warning"),
                      ("Pulled", 'Container image "busybox" already present on machine', "Normal"),
                      ("Created", "Created container app", "Normal"),
                      ("Started", "Started container app", "Normal")]  # fmt: skip
    for _ in range(2):  # the first restart is immediate, the second backs off
        clock.advance(1)
        runtime.exit(live(runtime, "app")[0].id, 1)
        syncer.sync(pod.key, pod)
    assert events[-1] == ("BackOff", "Back-off restarting failed container app in pod web_default(uid-1)", "Warning")
    never = make_pod("lost", "uid-2", containers=[container("app", image="nowhere:1", imagePullPolicy="Never")])
    syncer.sync(never.key, never)
    assert ("ErrImageNeverPull", 'Container image "nowhere:1" is not present with pull policy of Never',
            "Warning") in events  # fmt: skip


def test_host_ports_go_to_the_sandbox_and_a_second_pod_asking_them_is_refused(
    runtime: FakeRuntime, backoff: MemoryBackoffStore, clock: Clock, tmp_path: Path
) -> None:
    events: list[tuple[str, str, str, str]] = []
    syncer = PodSyncer(runtime, backoff, Settings(node_name="n1", data_dir=tmp_path), clock,
                       events=lambda pod, reason, message, kind: events.append((pod.key, reason, message, kind)))
    ports = [{"containerPort": 80, "hostPort": 18090, "protocol": "TCP"}]
    first = make_pod("first", "uid-1", containers=[container("app", ports=ports)])
    assert syncer.sync(first.key, first).status["phase"] == "Running"
    sandbox = next(c for c in live(runtime) if c.is_sandbox)
    assert sandbox.port_mappings == (PortMapping(80, 18090),)
    assert runtime.config_of(sandbox.id).oom_score_adj == -998

    second = make_pod("second", "uid-2", containers=[container("app", ports=ports)])
    refused = syncer.sync(second.key, second).status
    assert (refused["phase"], refused["reason"]) == ("Failed", "NodePorts")
    assert refused["message"] == "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
    assert [c.pod.name for c in runtime.list_containers()] == ["first", "first"]  # nothing of the second
    assert events[-1] == ("default/second", "NodePorts", refused["message"] + ": hostPort 18090/TCP on 0.0.0.0 is "
                          "held by pod default/first", "Warning")

    syncer.sync(first.key, None)  # the first pod goes: the second, refused, stays Failed (kubelet admits once)
    again = syncer.sync(second.key, second, refused).status
    assert (again["phase"], again["reason"]) == ("Failed", "NodePorts")
    assert runtime.list_containers() == []
    third = make_pod("third", "uid-3", containers=[container("app", ports=ports)])
    assert syncer.sync(third.key, third).status["phase"] == "Running"  # the port is free again


def test_a_host_network_pods_ports_are_held_but_not_published(runtime: FakeRuntime, clock: Clock,
                                                              backoff: MemoryBackoffStore, tmp_path: Path) -> None:
    settings = Settings(node_name="n1", data_dir=tmp_path, admission_allow_host_network=True)
    syncer = PodSyncer(runtime, backoff, settings, clock)
    host = make_pod("host", "uid-1", hostNetwork=True, containers=[container("app", ports=[{"containerPort": 9100}])])
    syncer.sync(host.key, host)
    sandbox = next(c for c in live(runtime) if c.is_sandbox)
    assert sandbox.port_mappings == (PortMapping(9100, 9100),)
    other = make_pod("other", "uid-2", containers=[container("app", ports=[{"containerPort": 80, "hostPort": 9100}])])
    assert syncer.sync(other.key, other).status["reason"] == "NodePorts"


def test_containers_get_kubelets_oom_score_and_the_pid_limit(runtime: FakeRuntime, clock: Clock,
                                                            backoff: MemoryBackoffStore, tmp_path: Path) -> None:
    syncer = PodSyncer(runtime, backoff, Settings(node_name="n1", data_dir=tmp_path, pod_pids_limit=100), clock)
    guaranteed = {"resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}
    pod = make_pod(containers=[container("best"), container("sure", **guaranteed)])
    syncer.sync(pod.key, pod)
    configs = {name: runtime.config_of(only(runtime, name).id) for name in ("best", "sure")}
    # One container without requests: the pod is Burstable, each container scored by its memory request.
    memory = PodFacts().node_memory_bytes
    assert configs["best"].oom_score_adj == 999
    assert configs["sure"].oom_score_adj == max(3, 1000 - 1000 * 64 * 2**20 // memory) < 999
    assert configs["best"].pids_limit == configs["sure"].pids_limit == 100
    unlimited = PodSyncer(runtime, backoff, Settings(node_name="n1", data_dir=tmp_path, pod_pids_limit=-1), clock)
    other = make_pod("other", "uid-2", containers=[container("app", **guaranteed)])
    unlimited.sync(other.key, other)
    assert runtime.config_of(only(runtime, "app").id).pids_limit is None
    assert runtime.config_of(only(runtime, "app").id).oom_score_adj == -997
