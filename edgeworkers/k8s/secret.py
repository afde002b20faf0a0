"""core/v1 Secret; ``data`` values are base64 on the wire, ``stringData`` is a write-only plain-text overlay."""

from __future__ import annotations

import base64
import copy
from typing import Any

from edgeworkers.k8s.meta import K8sObject


class Secret(K8sObject):
    api_version: str | None = "v1"
    kind: str | None = "Secret"
    data: dict[str, str] | None = None
    string_data: dict[str, str] | None = None
    type: str = "Opaque"
    immutable: bool | None = None

    def decoded(self) -> dict[str, bytes]:
        """Every key's bytes: ``data`` decoded, with ``stringData`` taking precedence like the API server."""
        values = {key: base64.b64decode(value) for key, value in (self.data or {}).items()}
        values.update({key: value.encode() for key, value in (self.string_data or {}).items()})
        return values


def default_secret(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy as the API server stores it: ``stringData`` merged into ``data`` (base64), ``type`` defaulted."""
    secret = copy.deepcopy(obj)
    secret.setdefault("apiVersion", "v1")
    secret.setdefault("kind", "Secret")
    if not secret.get("type"):
        secret["type"] = "Opaque"
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.get("data") or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data
    return secret
