"""coordination.k8s.io/v1 Lease: the node's heartbeat in ``kube-node-lease``."""

from __future__ import annotations

from pydantic import Field

from edgeworkers.k8s.meta import K8sModel, K8sObject


class LeaseSpec(K8sModel):
    """Times are RFC 3339 strings with microseconds (``MicroTime``), kept as sent."""

    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: int | None = None
    preferred_holder: str | None = None
    strategy: str | None = None


class Lease(K8sObject):
    api_version: str | None = "coordination.k8s.io/v1"
    kind: str | None = "Lease"
    spec: LeaseSpec = Field(default_factory=LeaseSpec)
