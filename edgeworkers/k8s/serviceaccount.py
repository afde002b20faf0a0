"""core/v1 ServiceAccount: each namespace has its ``default`` one, made by the cloud as kube's controllers make it."""

from __future__ import annotations

from typing import Any

from edgeworkers.k8s.meta import K8sObject

DEFAULT = "default"


class ServiceAccount(K8sObject):
    api_version: str | None = "v1"
    kind: str | None = "ServiceAccount"
    secrets: list[dict[str, Any]] | None = None
    image_pull_secrets: list[dict[str, Any]] | None = None
    automount_service_account_token: bool | None = None
