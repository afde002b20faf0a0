"""The Node object is a pure function of the node's facts: its shape, thresholds and transition times."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from edgeworkers.k8s.node import Node
from edgeworkers.node.status import (
    NodeFacts,
    condition_events,
    node_conditions,
    node_object,
)

NOW = datetime(2026, 11, 26, 14, 0, 0, tzinfo=UTC)
GiB = 1024**3


def facts(**changes: object) -> NodeFacts:
    base = NodeFacts(
        name="edge-1", hostname="box", internal_ip="127.0.0.1", kubelet_port=10350, cpu_count=2,
        memory_total_bytes=24 * GiB, disk_total_bytes=100 * GiB,
        kernel_version="6.1.0",
        os_image="Debian GNU/Linux 12 (bookworm)", architecture="amd64",
        container_runtime_version="docker://20.10.24", machine_id="m1", boot_id="b1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def by_type(conditions: list[dict]) -> dict[str, dict]:
    return {c["type"]: c for c in conditions}


def test_node_object_has_kubelets_shape() -> None:
    node = node_object(facts(), NOW)
    assert node["kind"] == "Node" and node["apiVersion"] == "v1"
    assert node["metadata"] == {"name": "edge-1", "labels": {
        "kubernetes.io/hostname": "edge-1", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "node-role.kubernetes.io/edge": "",
    }}
    status = node["status"]
    assert status["capacity"] == {
        "cpu": "2", "ephemeral-storage": f"{100 * GiB // 1024}Ki", "memory": f"{24 * GiB // 1024}Ki", "pods": "110"}
    assert status["allocatable"]["memory"] == f"{(24 * GiB - 100 * 1024**2) // 1024}Ki"
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "box"}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10350}}
    assert status["nodeInfo"] == {
        "machineID": "m1", "systemUUID": "m1", "bootID": "b1", "kernelVersion": "6.1.0",
        "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "docker://20.10.24",
        "kubeletVersion": "v1.32.0-edgeworkers", "kubeProxyVersion": "", "operatingSystem": "linux",
        "architecture": "amd64",
    }
    assert [c["type"] for c in status["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, {"MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}),
    ({"pressure": frozenset({"MemoryPressure"})}, {"MemoryPressure": "True", "DiskPressure": "False", "Ready": "True"}),
    ({"pressure": frozenset({"DiskPressure"})}, {"DiskPressure": "True", "PIDPressure": "False", "Ready": "True"}),
    ({"pressure": frozenset({"PIDPressure"})}, {"PIDPressure": "True", "MemoryPressure": "False"}),
    ({"runtime_error": "connection refused"}, {"Ready": "False"}),
])
def test_conditions_follow_the_measured_pressure(changes: dict, expected: dict[str, str]) -> None:
    conditions = by_type(node_conditions(facts(**changes), NOW))
    assert {kind: conditions[kind]["status"] for kind in expected} == expected


def test_not_ready_names_the_runtime() -> None:
    ready = by_type(node_conditions(facts(runtime_error="connection refused"), NOW))["Ready"]
    assert ready["reason"] == "KubeletNotReady"
    assert ready["message"] == "container runtime is down: connection refused"


def test_a_stuck_pleg_makes_the_node_not_ready_with_kubelets_message() -> None:
    why = "PLEG is not healthy: pleg was last seen active 3m5s ago; threshold is 3m0s"
    ready = by_type(node_conditions(facts(pleg_error=why), NOW))["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "KubeletNotReady", why)


def test_transition_time_moves_only_when_status_flips() -> None:
    first = node_conditions(facts(), NOW)
    later = NOW + timedelta(seconds=10)
    second = by_type(node_conditions(facts(pressure=frozenset({"MemoryPressure"})), later, first))
    assert second["Ready"]["lastTransitionTime"] == "2026-11-26T14:00:00Z"
    assert second["Ready"]["lastHeartbeatTime"] == "2026-11-26T14:00:10Z"
    assert second["MemoryPressure"]["lastTransitionTime"] == "2026-11-26T14:00:10Z"
    assert second["MemoryPressure"]["reason"] == "KubeletHasInsufficientMemory"


def test_node_object_reads_back_through_the_shared_model() -> None:
    node = node_object(facts(), NOW)
    parsed = Node.from_dict(node)
    assert parsed.to_dict() == node
    assert parsed.status is not None and parsed.status.daemon_endpoints is not None
    assert parsed.status.daemon_endpoints.kubelet_endpoint.port == 10350
    assert parsed.status.node_info.kubelet_version == "v1.32.0-edgeworkers"
    assert all(not c.model_extra for c in parsed.status.conditions)


@pytest.mark.parametrize(("before", "after", "reasons"), [
    ({}, {"Ready": "True", "MemoryPressure": "False"}, ["NodeReady", "NodeHasSufficientMemory"]),
    ({"Ready": "True"}, {"Ready": "True"}, []),
    ({"Ready": "True"}, {"Ready": "False"}, ["NodeNotReady"]),
    ({"DiskPressure": "False", "PIDPressure": "False"}, {"DiskPressure": "True", "PIDPressure": "False"},
     ["NodeHasDiskPressure"]),
    ({"PIDPressure": "True"}, {"PIDPressure": "False"}, ["NodeHasSufficientPID"]),
])
def test_condition_events(before: dict[str, str], after: dict[str, str], reasons: list[str]) -> None:
    def as_conditions(states: dict[str, str]) -> list[dict[str, str]]:
        return [{"type": t, "status": s} for t, s in states.items()]

    assert condition_events(as_conditions(before), as_conditions(after)) == reasons
