"""Lifecycle hooks (pods.hooks) on FakeRuntime: postStart after a start, preStop before each stop, their events, and
the postStart records the status reads (a new syncer, as after a worker restart, reads the same)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeworkers.config import Settings
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.hooks import (
    FAILED,
    MIN_GRACE_S,
    RUNNING,
    HookRunner,
    format_pod,
    pre_stop_labels,
    pre_stop_of,
)
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime import labels
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerState, ExecResult
from tests.unit.clock import Clock
from tests.unit.fakehttp import reply, servers
from tests.unit.pods.podkit import T0, container, make_pod

Events = list[tuple[str, str, str]]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def runtime(clock: Clock) -> FakeRuntime:
    return FakeRuntime(node_name="n1", clock=clock)


@pytest.fixture
def events() -> Events:
    return []


def make_syncer(runtime: FakeRuntime, tmp_path: Path, clock: Clock, events: Events, **settings: Any) -> PodSyncer:
    return PodSyncer(runtime, MemoryBackoffStore(), Settings(node_name="n1", data_dir=tmp_path, **settings), clock,
                     events=lambda pod, reason, message, kind: events.append((reason, message, kind)))  # fmt: skip


@pytest.fixture
def syncer(runtime: FakeRuntime, tmp_path: Path, clock: Clock, events: Events) -> PodSyncer:
    return make_syncer(runtime, tmp_path, clock, events)


def hooked(post_start: dict | None = None, pre_stop: dict | None = None, **fields: Any) -> dict[str, Any]:
    lifecycle = {**({"postStart": post_start} if post_start else {}), **({"preStop": pre_stop} if pre_stop else {})}
    return container("app", command=["sleep", "3600"], lifecycle=lifecycle, **fields)


def app_of(runtime: FakeRuntime) -> list:
    return sorted((c for c in runtime.list_containers() if c.name == "app"), key=lambda c: c.restart_count)


def failing_on(command: str, code: int = 1, output: bytes = b"boom\n"):
    """An exec handler failing (exit ``code``) the command whose last word is ``command``; the rest succeed."""
    return lambda _container, cmd: ExecResult(code, output) if cmd[-1] == command else ExecResult(0, b"")


def test_post_start_runs_right_after_the_start_and_the_container_is_then_started(
    syncer: PodSyncer, runtime: FakeRuntime, events: Events
) -> None:
    pod = make_pod(containers=[hooked(post_start={"exec": {"command": ["sh", "-c", "echo hi > /tmp/hook"]}})])
    result = syncer.sync(pod.key, pod)
    (app,) = app_of(runtime)
    names = [call[0] for call in runtime.calls if call[0] in ("start_container", "exec")]
    assert names[-2:] == ["start_container", "exec"]
    assert runtime.calls_named("exec")[-1] == ("exec", str(app.id), "sh", "-c", "echo hi > /tmp/hook")
    (status,) = result.status["containerStatuses"]
    assert "running" in status["state"] and status["started"] is True
    assert not [e for e in events if e[0].startswith("Failed")]


def test_a_failing_post_start_kills_the_container_with_its_event_and_the_status_says_why(
    syncer: PodSyncer, runtime: FakeRuntime, events: Events, tmp_path: Path, clock: Clock
) -> None:
    runtime.exec_handler = failing_on("exit 3", 3)
    pod = make_pod(containers=[hooked(post_start={"exec": {"command": ["sh", "-c", "exit 3"]}},
                                      pre_stop={"exec": {"command": ["sh", "-c", "echo bye"]}})])  # fmt: skip
    result = syncer.sync(pod.key, pod)
    (app,) = app_of(runtime)
    assert app.state == ContainerState.EXITED and app.exit_code == 137
    assert ("FailedPostStartHook", "PostStartHook failed", "Warning") in events
    assert ("Killing", "FailedPostStartHook", "Normal") in events
    # the kill ran the preStop first, as kubelet's killContainer
    assert runtime.calls_named("exec")[-1][-1] == "echo bye"
    (status,) = result.status["containerStatuses"]
    expected = (f'Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "{format_pod(app.pod)}" failed - '
                "error: command 'sh -c exit 3' exited with 3: , message: \"boom\\n\"")
    assert status["state"] == {"waiting": {"reason": "PostStartHookError", "message": expected}}
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert result.requeue_after is not None
    # a worker restarted meanwhile (a new syncer, nothing in memory) tells the same from the record
    again = make_syncer(runtime, tmp_path, clock, []).sync(pod.key, pod)
    assert again.status["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137
    assert app_of(runtime)[-1].restart_count == 1  # the restart policy started it again (the first at once)


def test_post_start_is_retried_by_restarts_then_the_container_runs(
    syncer: PodSyncer, runtime: FakeRuntime, clock: Clock
) -> None:
    attempts = []

    def flaky(_container, cmd):
        attempts.append(cmd)
        return ExecResult(1 if len(attempts) == 1 else 0, b"")

    runtime.exec_handler = flaky
    pod = make_pod(containers=[hooked(post_start={"exec": {"command": ["true"]}})])
    syncer.sync(pod.key, pod)
    result = syncer.sync(pod.key, pod)
    (status,) = result.status["containerStatuses"]
    assert "running" in status["state"] and status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 137


def test_with_restart_policy_never_a_failed_post_start_leaves_the_container_terminated(
    syncer: PodSyncer, runtime: FakeRuntime
) -> None:
    runtime.exec_handler = failing_on("false")
    pod = make_pod(containers=[hooked(post_start={"exec": {"command": ["false"]}})], restart="Never")
    result = syncer.sync(pod.key, pod)
    (status,) = result.status["containerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == 137
    assert result.status["phase"] == "Failed"


def test_a_post_start_a_dead_worker_left_unfinished_runs_again_and_until_then_the_container_waits(
    syncer: PodSyncer, runtime: FakeRuntime, tmp_path: Path
) -> None:
    pod = make_pod(containers=[hooked(post_start={"exec": {"command": ["setup"]}})])
    syncer.sync(pod.key, pod)
    (app,) = app_of(runtime)
    record = tmp_path / "pods" / "uid-1" / "containers" / "app" / "0.postStart"
    record.write_text(json.dumps({"state": RUNNING}))  # as a worker killed within the hook leaves it
    hooks = HookRunner(runtime, tmp_path)
    assert hooks.waiting(pod, runtime.list_containers()) == {"app": ("ContainerCreating", "")}
    before = len(runtime.calls_named("exec"))
    result = syncer.sync(pod.key, pod)
    assert runtime.calls_named("exec")[before:] == [("exec", str(app.id), "setup")]
    assert not record.exists()
    assert "running" in result.status["containerStatuses"][0]["state"]


def test_pre_stop_runs_before_the_stop_signal_on_deletion_and_its_time_comes_off_the_grace_period(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    now = [100.0]

    def slow(_container, _cmd):
        now[0] += 7.6  # the hook takes 7.6 s: 7 whole seconds come off
        return ExecResult(0, b"")

    runtime.exec_handler = slow
    syncer = make_syncer(runtime, tmp_path, Clock(T0), [])
    syncer._hooks = HookRunner(runtime, tmp_path, clock=lambda: now[0])
    pod = make_pod(containers=[hooked(pre_stop={"exec": {"command": ["drain"]}})], terminationGracePeriodSeconds=30)
    syncer.sync(pod.key, pod)
    (app,) = app_of(runtime)
    assert pre_stop_of(app) is not None
    syncer.sync(pod.key, None)  # the pod is gone from the desired state: the label still holds the hook
    order = [call for call in runtime.calls if call[0] in ("exec", "stop_container") and call[1] == str(app.id)]
    assert order == [("exec", str(app.id), "drain"), ("stop_container", str(app.id), "23")]


def test_a_pre_stop_longer_than_the_grace_period_leaves_the_minimum_and_a_failure_is_an_event(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    now = [0.0]
    events: Events = []

    def hung(_container, _cmd):
        now[0] += 5
        return ExecResult(2, b"")

    runtime.exec_handler = hung
    hooks = HookRunner(runtime, tmp_path, lambda pod, reason, message, kind: events.append((reason, message, kind)),
                       clock=lambda: now[0])  # fmt: skip
    syncer = make_syncer(runtime, tmp_path, Clock(T0), [])
    pod = make_pod(containers=[hooked(pre_stop={"exec": {"command": ["drain"]}})])
    syncer.sync(pod.key, pod)
    (app,) = app_of(runtime)
    assert hooks.pre_stop(app, 3.0, pod) == MIN_GRACE_S
    assert events == [("FailedPreStopHook", "PreStopHook failed", "Warning")]
    assert hooks.pre_stop(app, 0.0, pod) == 0.0  # no time: no hook (kubelet runs it only with a grace period)
    assert len(events) == 1


def test_a_liveness_kill_runs_the_pre_stop_first(runtime: FakeRuntime, tmp_path: Path) -> None:
    from edgeworkers.prober.manager import ProbeManager
    from edgeworkers.prober.policy import LIVENESS, ProbeState
    from edgeworkers.status.proberesults import MemoryProbeResults

    syncer = make_syncer(runtime, tmp_path, Clock(T0), [])
    pod = make_pod(containers=[hooked(pre_stop={"exec": {"command": ["drain"]}},
                                      livenessProbe={"exec": {"command": ["check"]}})])  # fmt: skip
    syncer.sync(pod.key, pod)
    (app,) = app_of(runtime)
    manager = ProbeManager(runtime, MemoryProbeResults(), lambda: [pod], lambda key: None, exec_sessions=False)
    try:
        spec = pod.spec.containers[0]
        manager._kill(pod, app, spec, LIVENESS, spec.liveness_probe, ProbeState.new(LIVENESS))
    finally:
        manager.close()
    order = [call[0] for call in runtime.calls if call[0] in ("exec", "stop_container") and call[1] == str(app.id)]
    assert order == ["exec", "stop_container"]


def test_http_hooks_reach_the_pods_own_address_and_refuse_another_host(
    runtime: FakeRuntime, tmp_path: Path, events: Events
) -> None:
    with servers() as start:
        server = start(lambda request, path, query: reply(request, 500, {}))  # any answer is a success
        port = int(server.url.rsplit(":", 1)[1])
        syncer = make_syncer(runtime, tmp_path, Clock(T0), events, admission_allow_host_network=True)
        pod = make_pod(
            containers=[hooked(post_start={"httpGet": {"path": "/started?x=1", "port": "web"}},
                               pre_stop={"httpGet": {"path": "/stopping", "port": port, "host": "10.9.9.9"}},
                               ports=[{"name": "web", "containerPort": port}])],
            hostNetwork=True,
        )  # fmt: skip
        result = syncer.sync(pod.key, pod)
        assert [path for path, _, _ in server.requests] == ["/started"]
        assert "running" in result.status["containerStatuses"][0]["state"]
        (app,) = app_of(runtime)
        assert json.loads(app.labels[labels.PRE_STOP])["httpGet"]["port"] == port
        syncer.sync(pod.key, None)
        assert [path for path, _, _ in server.requests] == ["/started"]  # 10.9.9.9 is not the pod's address
        assert ("FailedPreStopHook", "PreStopHook failed", "Warning") in events


def test_sleep_and_tcp_socket_hooks(runtime: FakeRuntime, tmp_path: Path) -> None:
    slept: list[float] = []
    hooks = HookRunner(runtime, tmp_path, sleep=slept.append)
    syncer = make_syncer(runtime, tmp_path, Clock(T0), [])
    pod = make_pod(containers=[hooked(pre_stop={"sleep": {"seconds": 5}})], terminationGracePeriodSeconds=3)
    syncer.sync(pod.key, pod)
    (app,) = app_of(runtime)
    hooks.pre_stop(app, 3.0, pod)
    assert slept == [3.0]  # never past the grace period
    tcp = make_pod(containers=[hooked(post_start={"tcpSocket": {"port": 80}})]).spec.containers[0]
    message = hooks.post_start(pod, tcp, app.id, app.pod, 0)
    assert message is not None and message.startswith("Cannot run handler: invalid handler")
    assert hooks.post_start_state(app) == (FAILED, message)


def test_the_pre_stop_label_holds_the_handler_with_its_named_port_resolved() -> None:
    spec = make_pod(containers=[hooked(pre_stop={"httpGet": {"path": "/q", "port": "http"}},
                                       ports=[{"name": "http", "containerPort": 8080}])]).spec.containers[0]  # fmt: skip
    assert json.loads(pre_stop_labels(spec)[labels.PRE_STOP]) == {
        "httpGet": {"path": "/q", "port": 8080, "scheme": "HTTP"}}
    assert pre_stop_labels(make_pod().spec.containers[0]) == {}
