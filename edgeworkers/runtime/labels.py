"""Docker labels that let the node's whole pod state be rebuilt from Docker alone."""
from __future__ import annotations

import json

from edgeworkers.runtime.types import PodRef, PortMapping

PREFIX = "io.edgeworkers"
NODE = f"{PREFIX}.node"  # the node name that owns the container (tests use unique node names)
POD_UID = f"{PREFIX}.pod.uid"
POD_NAMESPACE = f"{PREFIX}.pod.namespace"
POD_NAME = f"{PREFIX}.pod.name"
CONTAINER_NAME = f"{PREFIX}.container.name"
CONTAINER_TYPE = f"{PREFIX}.container.type"  # "sandbox" | "init" | "app" | "ephemeral"
RESTART_COUNT = f"{PREFIX}.container.restartCount"
SPEC_HASH = f"{PREFIX}.container.hash"
# A sandbox's host ports, [[containerPort, hostPort, protocol, hostIP], ...] in JSON: what its pod holds on the node,
# host-network pods included (Docker publishes nothing for those, so its own port bindings cannot tell).
HOST_PORTS = f"{PREFIX}.pod.hostPorts"
# An app container's preStop hook in JSON (its port a number), as kubelet keeps it in an annotation: the hook runs
# from the container alone, when its pod is gone from the desired state or from this process's memory.
PRE_STOP = f"{PREFIX}.container.preStop"

SANDBOX_NAME = "POD"
TYPE_SANDBOX = "sandbox"
TYPE_INIT = "init"
TYPE_APP = "app"
TYPE_EPHEMERAL = "ephemeral"  # added to a running pod (kubectl debug): never restarted


def for_container(
    node: str, pod: PodRef, name: str, kind: str, restart_count: int = 0, spec_hash: str = ""
) -> dict[str, str]:
    """The labels every container of a pod carries (``kind`` is one of the TYPE_* values)."""
    return {
        NODE: node,
        POD_UID: pod.uid,
        POD_NAMESPACE: pod.namespace,
        POD_NAME: pod.name,
        CONTAINER_NAME: name,
        CONTAINER_TYPE: kind,
        RESTART_COUNT: str(restart_count),
        SPEC_HASH: spec_hash,
    }


def pod_of(container_labels: dict[str, str]) -> PodRef | None:
    """The pod a container belongs to, or None when it lacks our labels."""
    try:
        return PodRef(
            container_labels[POD_UID], container_labels[POD_NAMESPACE], container_labels[POD_NAME]
        )
    except KeyError:
        return None


def docker_name(pod: PodRef, container_name: str, restart_count: int) -> str:
    """The container's Docker name as dockershim wrote it: ``k8s_<container>_<pod>_<ns>_<uid>_<restarts>``."""
    return f"k8s_{container_name}_{pod.name}_{pod.namespace}_{pod.uid}_{restart_count}"


def encode_ports(mappings: tuple[PortMapping, ...]) -> dict[str, str]:
    """The ``HOST_PORTS`` label of a sandbox holding ``mappings`` (none without any)."""
    if not mappings:
        return {}
    return {HOST_PORTS: json.dumps([[m.container_port, m.host_port, m.protocol, m.host_ip] for m in mappings],
                                   separators=(",", ":"))}


def decode_ports(container_labels: dict[str, str]) -> tuple[PortMapping, ...]:
    """The host ports a container's ``HOST_PORTS`` label holds; none when it has none (or one not ours)."""
    text = container_labels.get(HOST_PORTS)
    if not text:
        return ()
    try:
        return tuple(PortMapping(int(c), int(h), str(p), str(i)) for c, h, p, i in json.loads(text))
    except (ValueError, TypeError):
        return ()
