"""A pod's hostPorts and kube's NodePorts predicate (HostPortInfo.CheckConflict), from tables."""
from __future__ import annotations

from typing import Any

import pytest

from edgeworkers.pods.admission import NODE_PORTS_MESSAGE, REASON_NODE_PORTS, admit_host_ports
from edgeworkers.pods.hostports import conflict, held_ports, pod_port_mappings
from edgeworkers.runtime.types import Container, ContainerID, ContainerState, PodRef, PortMapping
from tests.unit.pods.podkit import container, make_pod


def port(container_port: int, host_port: int | None = None, protocol: str = "TCP", host_ip: str = "") -> dict:
    found: dict[str, Any] = {"containerPort": container_port, "protocol": protocol}
    if host_port is not None:
        found["hostPort"] = host_port
    if host_ip:
        found["hostIP"] = host_ip
    return found


def test_a_pods_host_ports_are_those_of_its_containers_with_a_host_port() -> None:
    pod = make_pod(containers=[
        container("web", ports=[port(80, 18080), port(9090), port(53, 1053, "UDP", "127.0.0.1")]),
        container("sctp", ports=[port(5000, 15000, "SCTP")]),
    ], init=[container("setup", ports=[port(81, 18081)])])  # init containers hold no host port (kube's scheduler)
    assert pod_port_mappings(pod) == (
        PortMapping(80, 18080), PortMapping(53, 1053, "UDP", "127.0.0.1"), PortMapping(5000, 15000, "SCTP"),
    )


def test_a_host_network_pods_container_ports_are_its_host_ports() -> None:
    pod = make_pod(hostNetwork=True, containers=[container("web", ports=[{"containerPort": 8080}])])
    assert pod_port_mappings(pod) == (PortMapping(8080, 8080),)


@pytest.mark.parametrize(
    ("wanted", "held", "clash"),
    [
        (PortMapping(80, 8080), PortMapping(81, 8080), True),  # the host port counts, not the container's
        (PortMapping(80, 8080), PortMapping(80, 8081), False),
        (PortMapping(80, 8080, "UDP"), PortMapping(80, 8080, "TCP"), False),  # another protocol
        (PortMapping(80, 8080, "SCTP"), PortMapping(80, 8080, "SCTP"), True),
        (PortMapping(80, 8080, host_ip="127.0.0.1"), PortMapping(80, 8080, host_ip="10.0.0.1"), False),
        (PortMapping(80, 8080, host_ip="127.0.0.1"), PortMapping(80, 8080, host_ip="127.0.0.1"), True),
        (PortMapping(80, 8080, host_ip="127.0.0.1"), PortMapping(80, 8080), True),  # held on every address
        (PortMapping(80, 8080), PortMapping(80, 8080, host_ip="127.0.0.1"), True),  # wanted on every address
        (PortMapping(80, 8080, host_ip="0.0.0.0"), PortMapping(80, 8080, host_ip="10.0.0.1"), True),
    ],
)
def test_check_conflict(wanted: PortMapping, held: PortMapping, clash: bool) -> None:
    assert wanted.overlaps(held) == held.overlaps(wanted) == clash
    assert (conflict((wanted,), {"default/first": (held,)}) is not None) == clash


def sandbox(pod: str, uid: str, *mappings: PortMapping, state: ContainerState = ContainerState.RUNNING) -> Container:
    return Container(ContainerID("docker", f"{uid}-POD"), PodRef(uid, "default", pod), "POD", "pause", "sha256:1",
                     state, is_sandbox=True, port_mappings=mappings)


def test_the_ports_held_are_those_of_other_pods_sandboxes_not_exited() -> None:
    containers = [
        sandbox("first", "u1", PortMapping(80, 18080)),
        sandbox("gone", "u2", PortMapping(80, 18081), state=ContainerState.EXITED),
        sandbox("web", "u0", PortMapping(80, 18082)),  # the pod itself (an older uid being replaced)
        sandbox("plain", "u3"),
    ]
    assert held_ports(containers, "default/web") == {"default/first": (PortMapping(80, 18080),)}


def web(*ports: dict) -> Any:
    return make_pod("web", "uid-web", containers=[container("app", ports=list(ports))])


def test_a_pod_asking_a_held_port_is_refused_naming_the_holder_in_the_event() -> None:
    holder = [sandbox("first", "u1", PortMapping(80, 18080))]
    reason, message, event = admit_host_ports(web(port(8080, 18080)), "default/web", holder, None)
    assert (reason, message) == (REASON_NODE_PORTS, NODE_PORTS_MESSAGE)
    assert reason == "NodePorts"
    assert message == "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
    assert event == f"{NODE_PORTS_MESSAGE}: hostPort 18080/TCP on 0.0.0.0 is held by pod default/first"
    assert admit_host_ports(web(port(8080, 18081)), "default/web", holder, None) is None
    assert admit_host_ports(web(port(8080)), "default/web", holder, None) is None


def test_a_pod_admitted_keeps_its_ports_and_a_pod_refused_stays_refused() -> None:
    pod = web(port(8080, 18080))
    both = [sandbox("first", "u1", PortMapping(80, 18080)), sandbox("web", "uid-web", PortMapping(8080, 18080))]
    assert admit_host_ports(pod, "default/web", both, None) is None  # its own sandbox exists: admitted before
    refused = {"phase": "Failed", "reason": "NodePorts", "message": NODE_PORTS_MESSAGE}
    assert admit_host_ports(pod, "default/web", [], refused) == (REASON_NODE_PORTS, NODE_PORTS_MESSAGE,
                                                                 NODE_PORTS_MESSAGE)
    assert admit_host_ports(pod, "default/web", [], {"phase": "Failed", "reason": "Forbidden"}) is None
