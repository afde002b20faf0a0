"""This node's core/v1 Node object: a pure function of the node's facts, plus the gatherer of those facts.

Conditions follow kubelet's: Ready plus the three pressure conditions, from the eviction signals measured against
the hard thresholds of the settings (``edgeworkers.eviction``; kubelet's defaults). A condition keeps its
``lastTransitionTime`` until its status changes, so the caller passes the conditions it last reported.
"""
from __future__ import annotations

import platform
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from edgeworkers.config import Settings
from edgeworkers.eviction.policy import DISK_PRESSURE, MEMORY_PRESSURE, PID_PRESSURE, thresholds_from, thresholds_met
from edgeworkers.eviction.policy import node_conditions as node_pressure
from edgeworkers.eviction.signals import existing_parent, observe
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.runtime.errors import RuntimeUnavailable

KUBELET_VERSION = "v1.32.0-edgeworkers"
MAX_PODS = 110
MEMORY_EVICTION_BYTES = 100 * 1024 * 1024
DISK_EVICTION_FRACTION = 0.10

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


@dataclass(frozen=True)
class NodeFacts:
    """What the node knows about itself at one moment."""

    name: str
    hostname: str
    internal_ip: str
    kubelet_port: int
    cpu_count: int
    memory_total_bytes: int
    disk_total_bytes: int
    kernel_version: str
    os_image: str
    architecture: str  # Go's GOARCH spelling: amd64, arm64, arm
    container_runtime_version: str  # docker://<version>
    runtime_error: str = ""  # why the container engine cannot be reached; the node is then not Ready
    pleg_error: str = ""  # why the PLEG is unhealthy (edgeworkers.pleg.health_error); the node is then not Ready
    machine_id: str = ""
    boot_id: str = ""
    max_pods: int = MAX_PODS
    pressure: frozenset[str] = frozenset()  # the pressure conditions that are True (eviction.policy.node_conditions)


def node_labels(facts: NodeFacts) -> dict[str, str]:
    return {
        "kubernetes.io/hostname": facts.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts.architecture,
        "node-role.kubernetes.io/edge": "",
    }


def node_conditions(
    facts: NodeFacts, now: datetime, previous: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Kubelet's four node conditions; ``lastTransitionTime`` moves only when a status flips."""
    pressure = facts.pressure
    table = [
        ("MemoryPressure", MEMORY_PRESSURE in pressure,
         ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
         ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")),
        ("DiskPressure", DISK_PRESSURE in pressure, ("KubeletHasDiskPressure", "kubelet has disk pressure"),
         ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")),
        ("PIDPressure", PID_PRESSURE in pressure,
         ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
         ("KubeletHasSufficientPID", "kubelet has sufficient PID available")),
        # Pressure shows in its own condition; only an unreachable engine or a stuck PLEG make the node not Ready.
        ("Ready", not facts.runtime_error and not facts.pleg_error, ("KubeletReady", "kubelet is posting ready status"),
         ("KubeletNotReady", f"container runtime is down: {facts.runtime_error}" if facts.runtime_error
          else facts.pleg_error)),
    ]
    before = {c.get("type"): c for c in previous}
    stamp = format_time(now)
    conditions = []
    for kind, flag, (reason_true, message_true), (reason_false, message_false) in table:
        status = "True" if flag else "False"
        old = before.get(kind)
        transition = old["lastTransitionTime"] if old and old.get("status") == status else stamp
        conditions.append({
            "type": kind,
            "status": status,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": transition,
            "reason": reason_true if flag else reason_false,
            "message": message_true if flag else message_false,
        })
    return conditions


def node_status(facts: NodeFacts, now: datetime, previous_conditions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The Node's ``status``, as kubelet reports it."""
    capacity = {
        "cpu": str(facts.cpu_count),
        "ephemeral-storage": f"{facts.disk_total_bytes // 1024}Ki",
        "memory": f"{facts.memory_total_bytes // 1024}Ki",
        "pods": str(facts.max_pods),
    }
    allocatable = {
        "cpu": str(facts.cpu_count),
        "ephemeral-storage": str(int(facts.disk_total_bytes * (1 - DISK_EVICTION_FRACTION))),
        "memory": f"{max(0, facts.memory_total_bytes - MEMORY_EVICTION_BYTES) // 1024}Ki",
        "pods": str(facts.max_pods),
    }
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": node_conditions(facts, now, previous_conditions),
        "addresses": [
            {"type": "InternalIP", "address": facts.internal_ip},
            {"type": "Hostname", "address": facts.hostname},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": facts.kubelet_port}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.machine_id,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel_version,
            "osImage": facts.os_image,
            "containerRuntimeVersion": facts.container_runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": facts.architecture,
        },
    }


# kubelet's event reason for each condition's new status (recordNodeStatusEvent).
_EVENT_REASONS = {
    ("Ready", "True"): "NodeReady",
    ("Ready", "False"): "NodeNotReady",
    ("MemoryPressure", "True"): "NodeHasInsufficientMemory",
    ("MemoryPressure", "False"): "NodeHasSufficientMemory",
    ("DiskPressure", "True"): "NodeHasDiskPressure",
    ("DiskPressure", "False"): "NodeHasNoDiskPressure",
    ("PIDPressure", "True"): "NodeHasInsufficientPID",
    ("PIDPressure", "False"): "NodeHasSufficientPID",
}


def condition_events(previous: Sequence[dict[str, Any]], current: Sequence[dict[str, Any]]) -> list[str]:
    """Reasons of the events kubelet records for conditions that are new or have changed status."""
    before = {c["type"]: c["status"] for c in previous}
    return [
        reason
        for condition in current
        if (reason := _EVENT_REASONS.get((condition["type"], condition["status"])))
        and before.get(condition["type"]) != condition["status"]
    ]


def node_object(facts: NodeFacts, now: datetime, previous_conditions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The whole Node to register: metadata, an empty spec, and the status."""
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": facts.name, "labels": node_labels(facts)},
        "spec": {},
        "status": node_status(facts, now, previous_conditions),
    }


def gather_facts(
    settings: Settings, runtime_version: Callable[[], str], pleg_error: Callable[[], str] = lambda: "",
    image_root: Callable[[], str] | None = None,
) -> NodeFacts:
    """Read this machine's facts (psutil, /etc/os-release, /proc).

    ``runtime_version`` answers ``docker://<version>`` or raises RuntimeUnavailable; ``pleg_error`` why the PLEG is
    unhealthy ("" when it is); ``image_root`` Docker's data root, whose filesystem the image signals measure.
    """
    try:
        version, runtime_error = runtime_version(), ""
    except RuntimeUnavailable as exc:
        version, runtime_error = "", str(exc) or "unreachable"
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(existing_parent(settings.data_dir)))
    # An engine that did not answer is not asked again for its data root: one status timeout per heartbeat at most.
    observed = observe(settings.data_dir, None if runtime_error else image_root)
    pressure = node_pressure(thresholds_met(thresholds_from(settings), observed))
    return NodeFacts(
        name=settings.node_name,
        hostname=socket.gethostname(),
        internal_ip=settings.node_host,
        kubelet_port=settings.node_port,
        cpu_count=psutil.cpu_count() or 1,
        memory_total_bytes=memory.total,
        disk_total_bytes=disk.total,
        kernel_version=platform.release(),
        os_image=_os_image(),
        architecture=_ARCHITECTURES.get(platform.machine(), platform.machine()),
        container_runtime_version=version,
        runtime_error=runtime_error,
        pleg_error=pleg_error(),
        machine_id=_read("/etc/machine-id"),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        pressure=frozenset(pressure),
    )


def _os_image() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
    except OSError:
        return "Linux"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""
