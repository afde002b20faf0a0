"""core/v1 Namespace (cluster-scoped; ``spec.finalizers`` defaults to ``kubernetes``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from edgeworkers.k8s.meta import K8sModel, K8sObject


class NamespaceSpec(K8sModel):
    finalizers: list[str] | None = None


class NamespaceStatus(K8sModel):
    phase: str | None = None
    conditions: list[Any] | None = None


class Namespace(K8sObject):
    api_version: str | None = "v1"
    kind: str | None = "Namespace"
    spec: NamespaceSpec = Field(default_factory=NamespaceSpec)
    status: NamespaceStatus | None = None
