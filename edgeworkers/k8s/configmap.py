"""core/v1 ConfigMap."""

from __future__ import annotations

from edgeworkers.k8s.meta import K8sObject


class ConfigMap(K8sObject):
    api_version: str | None = "v1"
    kind: str | None = "ConfigMap"
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None  # base64, as on the wire
    immutable: bool | None = None
