"""Orphan cleanup over FakeRuntime."""

from __future__ import annotations

from edgeworkers.pods.orphans import remove_orphans
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig


def start_pod(runtime: FakeRuntime, ref: PodRef) -> None:
    sandbox = runtime.create_sandbox(SandboxConfig(ref))
    runtime.start_container(runtime.create_container(sandbox, ref, ContainerConfig("app", "busybox")))


def test_containers_of_undesired_pods_are_stopped_and_removed() -> None:
    runtime = FakeRuntime(node_name="n1")
    other_node = FakeRuntime(node_name="n2")
    start_pod(runtime, PodRef("u1", "default", "keep"))
    start_pod(runtime, PodRef("u2", "default", "orphan"))
    start_pod(runtime, PodRef("u3", "kube-system", "orphan"))
    assert remove_orphans(runtime, {"default/keep"}, 5) == ["default/orphan", "kube-system/orphan"]
    assert {c.pod.key for c in runtime.list_containers()} == {"default/keep"}
    stops = runtime.calls_named("stop_container")
    assert len(stops) == 4 and {call[2] for call in stops} == {"5"}
    assert remove_orphans(other_node, set(), 5) == []


def test_nothing_to_clean_returns_nothing() -> None:
    runtime = FakeRuntime(node_name="n1")
    start_pod(runtime, PodRef("u1", "default", "keep"))
    assert remove_orphans(runtime, {"default/keep"}, 30) == []
    assert not runtime.calls_named("remove_container")
