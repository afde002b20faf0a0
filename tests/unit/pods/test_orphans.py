"""Orphans: the pure key selection, and PodSyncer finding them on FakeRuntime."""

from __future__ import annotations

from edgeworkers.config import Settings
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.orphans import orphan_keys
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig


def start_pod(runtime: FakeRuntime, ref: PodRef) -> None:
    sandbox = runtime.create_sandbox(SandboxConfig(ref))
    runtime.start_container(runtime.create_container(sandbox, ref, ContainerConfig("app", "busybox")))


def test_orphan_keys_are_the_undesired_owners_sorted() -> None:
    runtime = FakeRuntime(node_name="n1")
    for ref in (PodRef("u1", "default", "keep"), PodRef("u2", "default", "orphan"), PodRef("u3", "kube-system", "x")):
        start_pod(runtime, ref)
    assert orphan_keys(runtime.list_containers(), {"default/keep"}) == ["default/orphan", "kube-system/x"]
    assert orphan_keys(runtime.list_containers(), {"default/keep", "default/orphan", "kube-system/x"}) == []


def test_the_syncer_sees_only_its_own_nodes_orphans(settings: Settings) -> None:
    runtime = FakeRuntime(node_name=settings.node_name)
    other_node = FakeRuntime(node_name="n2")
    start_pod(runtime, PodRef("u1", "default", "orphan"))
    start_pod(other_node, PodRef("u2", "default", "theirs"))
    assert PodSyncer(runtime, MemoryBackoffStore(), settings).orphans(set()) == ["default/orphan"]
