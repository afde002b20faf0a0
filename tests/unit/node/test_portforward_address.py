"""Where the node forwards a port: the pod's own IP; the host's loopback only for a pod whose sandbox shares the
host's network; nowhere for a pod whose sandbox has no address (never the node's own 127.0.0.1 by accident)."""
from __future__ import annotations

import pytest

from edgeworkers.node.portforward import LOOPBACK, PortForwardError, pod_address
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerID, PodRef, SandboxConfig

POD = PodRef("uid-1", "default", "web")


class NoAddress(FakeRuntime):
    """A sandbox on Docker's network that has lost its address (disconnected, a network without IPAM)."""

    def container_ip(self, container: ContainerID) -> str | None:
        return None


def test_a_pod_is_reached_on_its_own_ip() -> None:
    runtime = FakeRuntime(node_name="edge-1")
    sandbox = runtime.create_sandbox(SandboxConfig(POD))
    assert pod_address(runtime, "default", "web") == runtime.container_ip(sandbox) != LOOPBACK


def test_only_a_host_network_pod_is_reached_on_the_loopback() -> None:
    runtime = FakeRuntime(node_name="edge-1")
    runtime.create_sandbox(SandboxConfig(POD, host_network=True))
    assert pod_address(runtime, "default", "web") == LOOPBACK


def test_a_pod_without_an_address_is_not_forwarded_to_the_loopback() -> None:
    runtime = NoAddress(node_name="edge-1")
    runtime.create_sandbox(SandboxConfig(POD))
    assert pod_address(runtime, "default", "web") is None


def test_a_pod_not_running_here_is_404() -> None:
    with pytest.raises(PortForwardError) as caught:
        pod_address(FakeRuntime(node_name="edge-1"), "default", "web")
    assert caught.value.code == 404
