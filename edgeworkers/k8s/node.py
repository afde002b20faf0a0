"""core/v1 Node: what the edge node reports about itself."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from edgeworkers.k8s.meta import K8sModel, K8sObject
from edgeworkers.k8s.pod import QuantityStr


class Taint(K8sModel):
    key: str
    value: str | None = None
    effect: str
    time_added: str | None = None


class NodeSpec(K8sModel):
    pod_cidr: str | None = Field(default=None, alias="podCIDR")
    pod_cidrs: list[str] | None = Field(default=None, alias="podCIDRs")
    provider_id: str | None = Field(default=None, alias="providerID")
    unschedulable: bool | None = None
    taints: list[Taint] | None = None
    config_source: Any = None
    external_id: str | None = Field(default=None, alias="externalID")
    pod_preemption_policy: Any = None


class NodeCondition(K8sModel):
    type: str
    status: str
    last_heartbeat_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(K8sModel):
    type: str
    address: str


class DaemonEndpoint(K8sModel):
    port: int = Field(alias="Port")  # the one capitalised field in core/v1


class NodeDaemonEndpoints(K8sModel):
    kubelet_endpoint: DaemonEndpoint | None = None


class NodeSystemInfo(K8sModel):
    machine_id: str = Field(default="", alias="machineID")
    system_uuid: str = Field(default="", alias="systemUUID")
    boot_id: str = Field(default="", alias="bootID")
    kernel_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    kubelet_version: str = ""
    kube_proxy_version: str = ""
    operating_system: str = ""
    architecture: str = ""
    swap: Any = None
    running_in_user_namespace: bool | None = None


class ContainerImage(K8sModel):
    names: list[str] | None = None
    size_bytes: int | None = None


class NodeStatus(K8sModel):
    capacity: dict[str, QuantityStr] | None = None
    allocatable: dict[str, QuantityStr] | None = None
    phase: str | None = None
    conditions: list[NodeCondition] | None = None
    addresses: list[NodeAddress] | None = None
    daemon_endpoints: NodeDaemonEndpoints | None = None
    node_info: NodeSystemInfo | None = None
    images: list[ContainerImage] | None = None
    volumes_in_use: list[str] | None = None
    volumes_attached: list[Any] | None = None
    config: Any = None
    runtime_handlers: list[Any] | None = None
    features: Any = None
    declared_features: list[str] | None = None


class Node(K8sObject):
    api_version: str | None = "v1"
    kind: str | None = "Node"
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus | None = None
