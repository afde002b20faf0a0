"""The probe manager on a FakeRuntime, an in-memory probe results store and a fake clock: due probes found on the tick, results published
on change, a liveness failure kills with events, a hanging probe delays no other, probes reach only the pod."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from edgeworkers.k8s.pod import Pod
from edgeworkers.prober.handlers import ProbeRefused, probe_target, resolve_port
from edgeworkers.prober.manager import ProbeManager
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerConfig, ContainerState, ExecResult, PodRef, SandboxConfig
from edgeworkers.status.proberesults import MemoryProbeResults
from tests.polling import wait_for
from tests.unit.clock import Clock
from tests.unit.prober.fakeshell import FakeShell


def make_pod(name: str, uid: str, **probes: Any) -> Pod:
    container = {"name": "app", "image": "busybox", **probes}
    return Pod.model_validate({"metadata": {"name": name, "namespace": "default", "uid": uid},
                               "spec": {"containers": [container], "terminationGracePeriodSeconds": 5}})  # fmt: skip


def exec_probe(command: str, **options: Any) -> dict[str, Any]:
    return {"exec": {"command": [command]}, "periodSeconds": 1, "failureThreshold": 1, **options}


class Harness:
    def __init__(self, pods: list[Pod]) -> None:
        self.runtime = FakeRuntime("node")
        self.shell = FakeShell(self.runtime)  # exec probes run through the prober's shell sessions
        self.runtime.stream_handler = self.shell
        self.results = MemoryProbeResults()
        self.clock = Clock(0.0)
        self.synced: list[str] = []
        self.events: list[tuple[str, str, str]] = []
        self.pods = pods
        self.apps = {}
        for pod in pods:
            ref = PodRef(pod.metadata.uid, "default", pod.metadata.name)
            sandbox = self.runtime.create_sandbox(SandboxConfig(ref))
            app = self.runtime.create_container(sandbox, ref, ContainerConfig("app", "busybox"))
            self.runtime.start_container(app)
            self.apps[pod.metadata.name] = app
        self.clock.now = time.time() + 0.01  # the fake runtime stamps containers with the real time
        self._finishing = threading.Lock()
        self.start_manager()

    def start_manager(self) -> None:
        """A new prober on the same runtime and results store (the agent started, or started again)."""
        self.manager = ProbeManager(
            self.runtime, self.results, lambda: self.pods, self.synced.append,
            lambda pod, reason, message, kind: self.events.append((pod.metadata.name, reason, kind)),
            clock=self.clock, workers=4,
        )  # fmt: skip
        self.finished = 0  # runs ended (a run is the pool's call of the manager's _run)
        self.manager._run = self._count_finished(self.manager._run)

    def restart(self) -> None:
        self.settle()
        self.manager.close()
        self.start_manager()

    def tick(self) -> int:
        return self.manager.tick(self.runtime.list_containers())

    def settle(self) -> None:
        """Wait until every run started has ended, what it publishes and syncs included."""
        wait_for(lambda: self.finished == self.manager.runs, 5, "probe runs done")

    def _count_finished(self, run):
        def counted(*args):
            try:
                run(*args)
            finally:
                with self._finishing:
                    self.finished += 1

        return counted


@pytest.fixture
def closing():
    managers = []
    yield managers.append
    for manager in managers:
        manager.close()


def test_readiness_is_published_on_change_and_the_pod_synced(closing) -> None:
    h = Harness([make_pod("web", "u1", readinessProbe=exec_probe("ready"))])
    closing(h.manager)
    answers = iter([0, 0, 1])
    h.runtime.exec_handler = lambda container, command: ExecResult(next(answers), b"")
    app = h.apps["web"].id
    assert h.tick() == 1
    h.settle()
    assert h.results.results[app] == {"readiness": True} and h.synced == ["default/web"]
    h.clock.now += 0.4
    assert h.tick() == 0  # not due yet (nor within half a tick)
    h.clock.now += 0.6
    h.tick()
    h.settle()
    assert h.synced == ["default/web"]  # unchanged: nothing published
    h.clock.now += 1
    h.tick()
    h.settle()
    assert h.results.results[app] == {"readiness": False} and h.synced == ["default/web"] * 2
    assert ("web", "Unhealthy", "Warning") in h.events
    assert h.runtime.calls_named("stop_container") == []  # readiness never kills


def test_a_liveness_failure_records_unhealthy_then_killing_and_stops_the_container(closing) -> None:
    h = Harness([make_pod("live", "u1", livenessProbe=exec_probe("alive"))])
    closing(h.manager)
    h.runtime.exec_handler = lambda container, command: ExecResult(1, b"no such file")
    h.tick()
    wait_for(lambda: h.runtime.calls_named("stop_container"), 5, "the kill")
    assert [e[1] for e in h.events] == ["Unhealthy", "Killing"]
    assert h.runtime.calls_named("stop_container") == [("stop_container", str(h.apps["live"]), "5")]
    assert h.synced == ["default/live"]


def test_a_hanging_probe_delays_no_other(closing) -> None:
    pods = [make_pod("hang", "u1", readinessProbe=exec_probe("hang")),
            make_pod("quick", "u2", readinessProbe=exec_probe("quick"))]  # fmt: skip
    h = Harness(pods)
    closing(h.manager)
    release = threading.Event()

    def handler(container, command):
        if command == ["hang"]:
            release.wait(5)
        return ExecResult(0, b"")

    h.runtime.exec_handler = handler
    h.tick()
    wait_for(lambda: "default/quick" in h.synced, 2, "the quick probe's result")
    h.clock.now += 1
    h.tick()  # the hanging run is still in flight: not started again
    assert h.shell.runs.count(["hang"]) == 1
    release.set()


def test_startup_holds_liveness_and_readiness(closing) -> None:
    h = Harness([make_pod("slow", "u1", startupProbe=exec_probe("started", failureThreshold=10),
                          livenessProbe=exec_probe("alive"), readinessProbe=exec_probe("ready"))])  # fmt: skip
    closing(h.manager)
    started = iter([1, 0])
    h.runtime.exec_handler = lambda container, command: ExecResult(
        next(started) if command == ["started"] else 0, b"")  # fmt: skip
    h.tick()
    h.settle()
    assert h.shell.runs == [["started"]]
    h.clock.now += 1
    h.tick()
    h.settle()
    h.clock.now += 1
    h.tick()
    h.settle()
    assert sorted(argv[0] for argv in h.shell.runs) == ["alive", "ready", "started", "started"]
    assert h.results.results[h.apps["slow"].id] == {"startup": True, "readiness": True}


def test_results_of_containers_gone_are_forgotten(closing) -> None:
    h = Harness([make_pod("web", "u1", readinessProbe=exec_probe("ready"))])
    closing(h.manager)
    h.tick()
    h.settle()
    assert h.apps["web"].id in h.results.results
    assert len(h.runtime.open_streams) == 1  # the container's exec probe session
    h.manager.tick([])
    assert h.apps["web"].id not in h.results.results and h.manager._states == {}
    wait_for(lambda: not h.runtime.open_streams, 5, "the session of the container gone closed")


@pytest.mark.parametrize(
    ("host", "allowed"), [(None, True), ("10.88.0.2", True), ("169.254.169.254", False), ("127.0.0.1", False)]
)
def test_network_probes_reach_only_the_pods_own_address(host, allowed) -> None:
    if allowed:
        assert probe_target(host, "10.88.0.2") == "10.88.0.2"
    else:
        with pytest.raises(ProbeRefused, match="refused"):
            probe_target(host, "10.88.0.2")


def test_named_ports_resolve_from_the_container() -> None:
    spec = make_pod("web", "u1").spec.containers[0].model_copy(
        update={"ports": Pod.model_validate({"metadata": {"name": "x"}, "spec": {"containers": [
            {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]}}).spec.containers[0].ports})
    assert resolve_port("http", spec) == 8080 and resolve_port(81, spec) == 81 and resolve_port("82", spec) == 82
    with pytest.raises(ProbeRefused):
        resolve_port("nope", spec)


def test_a_pod_being_deleted_keeps_its_readiness_probe_and_loses_liveness_and_startup(closing) -> None:
    pod = make_pod("going", "u9", livenessProbe=exec_probe("alive"), readinessProbe=exec_probe("ready"),
                   startupProbe=exec_probe("started"))  # fmt: skip
    pod.metadata.deletion_timestamp = "2026-12-05T10:00:00Z"
    h = Harness([pod])
    closing(h.manager)
    h.runtime.exec_handler = lambda container, command: ExecResult(1, b"")  # every probe would fail
    h.tick()  # startup first: not run, so neither is liveness; readiness waits for a started container
    h.settle()
    assert h.manager.runs == 0 and h.runtime.calls_named("stop_container") == []


def test_a_failed_probes_event_carries_a_short_message(closing) -> None:
    from edgeworkers.prober.manager import EVENT_MESSAGE_MAX

    h = Harness([make_pod("chatty", "u8", livenessProbe=exec_probe("check"))])
    closing(h.manager)
    messages = []
    h.manager._record_event = lambda pod, reason, message, kind: messages.append((reason, message))
    h.runtime.exec_handler = lambda container, command: ExecResult(1, b"x" * 10_000)
    h.tick()
    h.settle()
    [(reason, message), *_] = messages
    assert reason == "Unhealthy" and len(message) < EVENT_MESSAGE_MAX + 64 and message.endswith("(truncated)")


def answers(*codes: int):
    """An exec handler answering each run with the next exit code, the last one for good."""
    queue = list(codes)
    return lambda container, command: ExecResult(queue.pop(0) if len(queue) > 1 else queue[0], b"")


def test_a_restarted_prober_turns_a_ready_container_whose_probe_fails_not_ready(closing) -> None:
    h = Harness([make_pod("web", "u1", readinessProbe=exec_probe("ready"))])
    closing(h.manager)
    app = h.apps["web"].id
    h.runtime.exec_handler = answers(0)
    h.tick()
    h.settle()
    assert h.results.results[app] == {"readiness": True}
    h.restart()  # the agent restarts; meanwhile the probe started failing
    closing(h.manager)
    h.runtime.exec_handler = answers(1)
    h.synced.clear()
    h.tick()
    h.settle()
    assert h.results.results[app] == {"readiness": False} and h.synced == ["default/web"]


def test_a_restarted_prober_keeps_a_ready_container_ready_until_its_probe_fails(closing) -> None:
    h = Harness([make_pod("web", "u1", readinessProbe=exec_probe("ready", successThreshold=2, failureThreshold=2))])
    closing(h.manager)
    app = h.apps["web"].id
    h.results.set(app, "readiness", True)  # stored before the restart
    h.runtime.exec_handler = answers(1, 0)  # one failure, then successes: under both thresholds
    for _ in range(3):
        h.tick()
        h.settle()
        h.clock.now += 1
    assert h.results.results[app] == {"readiness": True} and h.synced == []  # seeded: no flap


def test_a_started_container_is_not_probed_for_startup_again_after_a_restart(closing) -> None:
    h = Harness([make_pod("slow", "u1", startupProbe=exec_probe("started"), readinessProbe=exec_probe("ready"))])
    closing(h.manager)
    h.results.set(h.apps["slow"].id, "startup", True)
    h.runtime.exec_handler = answers(0)
    h.tick()
    h.settle()
    assert h.shell.runs == [["ready"]]


class FlakyResults(MemoryProbeResults):
    """A store whose next ``set`` fails (Redis away for a moment)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    def set(self, container_id: str, kind: str, success: bool) -> bool:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("Redis is away")
        return super().set(container_id, kind, success)


def test_a_result_whose_write_failed_is_written_by_the_next_run(closing) -> None:
    h = Harness([make_pod("web", "u1", readinessProbe=exec_probe("ready"))])
    closing(h.manager)
    h.results = h.manager._results = FlakyResults()
    app = h.apps["web"].id
    h.runtime.exec_handler = answers(0, 1)
    h.tick()
    h.settle()
    assert h.results.results[app] == {"readiness": True}
    h.results.fail_next = True
    h.clock.now += 1
    h.tick()  # turns to failure; its write fails
    h.settle()
    assert h.results.results[app] == {"readiness": True}
    h.clock.now += 1
    h.tick()  # the result unchanged, written again
    h.settle()
    assert h.results.results[app] == {"readiness": False} and h.synced[-1] == "default/web"


def test_a_container_whose_stop_failed_is_probed_and_killed_again(closing) -> None:
    h = Harness([make_pod("live", "u1", livenessProbe=exec_probe("alive"))])
    closing(h.manager)
    h.runtime.exec_handler = answers(1)
    h.runtime.fail("stop_container", ContainerRuntimeError("the engine refused the stop"))
    h.tick()
    h.settle()
    app = next(c for c in h.runtime.list_containers() if c.id == h.apps["live"])
    assert h.runtime.calls_named("stop_container") and app.state == ContainerState.RUNNING  # the stop failed
    h.clock.now += 1
    h.tick()
    h.settle()
    assert len(h.runtime.calls_named("stop_container")) == 2
    assert [e[1] for e in h.events].count("Killing") == 2


def test_a_run_ending_after_its_container_went_writes_no_result(closing) -> None:
    h = Harness([make_pod("web", "u1", readinessProbe=exec_probe("ready"))])
    closing(h.manager)
    release = threading.Event()

    def slow(container, command):
        release.wait(5)
        return ExecResult(0, b"")

    h.runtime.exec_handler = slow
    h.tick()
    h.manager.tick([])  # the container goes while its run is in flight: its results forgotten
    release.set()
    h.settle()
    assert h.results.results == {}
