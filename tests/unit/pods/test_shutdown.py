"""Graceful node shutdown: every running container stopped (apps with the grace period, then sandboxes), none
removed, so the next boot starts the pods again."""
from __future__ import annotations

import subprocess

from edgeworkers.pods.shutdown import shutting_down, stop_pods
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerConfig, ContainerState, PodRef, SandboxConfig


def start_pod(runtime: FakeRuntime, ref: PodRef) -> None:
    sandbox = runtime.create_sandbox(SandboxConfig(ref))
    runtime.start_container(runtime.create_container(sandbox, ref, ContainerConfig("app", "busybox")))


def test_every_container_is_stopped_apps_first_with_the_grace_period_and_none_removed() -> None:
    runtime = FakeRuntime(node_name="n1")
    for ref in (PodRef("u1", "default", "a"), PodRef("u2", "default", "b")):
        start_pod(runtime, ref)
    before = {c.id for c in runtime.list_containers()}

    stopped = stop_pods(runtime, 7.0)

    assert {c.id for c in stopped} == before
    assert {c.id for c in runtime.list_containers()} == before
    assert all(c.state == ContainerState.EXITED for c in runtime.list_containers())
    calls = runtime.calls_named("stop_container")
    graces = [call[2] for call in calls]
    assert graces == ["7", "7", "0", "0"]  # the apps, then the sandboxes


def test_a_node_without_running_pods_stops_nothing() -> None:
    assert stop_pods(FakeRuntime(node_name="n1"), 30.0) == []


def test_only_a_machine_shutting_down_counts() -> None:
    def answering(state: str):
        return lambda *_args, **_kwargs: subprocess.CompletedProcess([], 0, f"{state}\n", "")

    def missing(*_args, **_kwargs):
        raise FileNotFoundError("systemctl")

    assert shutting_down(answering("stopping"))
    assert not shutting_down(answering("running"))
    assert not shutting_down(answering("degraded"))
    assert not shutting_down(missing)  # no systemd: never
