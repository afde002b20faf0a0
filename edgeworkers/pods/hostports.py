"""A pod's hostPorts, who holds which on the node, and whether a new pod's collide (kube's NodePorts predicate).

The ports a pod holds are recorded on its sandbox (``runtime.labels.HOST_PORTS``), host-network pods' too, so the
node's whole set is rebuilt from Docker alone. Two pods collide on the same (protocol, hostPort) when they name the
same hostIP or either names none (every address), as kube's ``HostPortInfo.CheckConflict`` decides
(``PortMapping.overlaps``). Pure: pods and listed containers in, mappings out.
"""
from __future__ import annotations

from edgeworkers.k8s.pod import Pod
from edgeworkers.runtime.types import ANY_IP, Container, ContainerState, PortMapping


def pod_port_mappings(pod: Pod) -> tuple[PortMapping, ...]:
    """The hostPorts of the pod's containers (``spec.containers``, the ones kube's scheduler counts), in order. A
    host-network pod's ports are the node's own: a containerPort without hostPort is held as itself (as the API
    server defaults it)."""
    host_network = bool(pod.spec.host_network)
    mappings = []
    for container in pod.spec.containers:
        for port in container.ports or []:
            host_port = port.host_port or (port.container_port if host_network else 0)
            if host_port > 0:
                mappings.append(PortMapping(port.container_port, host_port, (port.protocol or "TCP").upper(),
                                            port.host_ip or ""))
    return tuple(dict.fromkeys(mappings))


def held_ports(containers: list[Container], key: str) -> dict[str, tuple[PortMapping, ...]]:
    """The host ports each pod but ``key`` holds on the node, by pod key: those of its sandboxes not exited (a pod
    whose sandbox is being made or runs; one stopped for good holds nothing)."""
    held: dict[str, tuple[PortMapping, ...]] = {}
    for container in containers:
        if container.is_sandbox and container.pod.key != key and container.state != ContainerState.EXITED:
            held[container.pod.key] = held.get(container.pod.key, ()) + container.port_mappings
    return {pod: mappings for pod, mappings in held.items() if mappings}


def conflict(wanted: tuple[PortMapping, ...], held: dict[str, tuple[PortMapping, ...]]) -> tuple[PortMapping, str] | None:
    """The first of ``wanted`` that another pod holds, and that pod's key; None when all are free."""
    for mapping in wanted:
        for pod, mappings in sorted(held.items()):
            if any(mapping.overlaps(other) for other in mappings):
                return mapping, pod
    return None


def describe(mapping: PortMapping) -> str:
    """``hostPort 18090/TCP on 0.0.0.0``, as a message names it."""
    return f"hostPort {mapping.host_port}/{mapping.protocol} on {mapping.host_ip or ANY_IP}"


__all__ = ["conflict", "describe", "held_ports", "pod_port_mappings"]
