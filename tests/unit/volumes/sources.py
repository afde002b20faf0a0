"""A ``Sources`` from plain dicts: configmaps and secrets by name, in the default namespace (MetaClient stand-in)."""
from __future__ import annotations

import base64
from typing import Any

from edgeworkers.metamanager.client import NotFound


class FakeSources:
    def __init__(self, configmaps: dict[str, dict[str, str]] | None = None,
                 secrets: dict[str, dict[str, bytes]] | None = None, types: dict[str, str] | None = None) -> None:
        self.configmaps = dict(configmaps or {})
        self.secrets = dict(secrets or {})
        self.types = dict(types or {})  # secret name -> type (default: none, as Opaque)
        self.asked: list[tuple[str, str, str]] = []

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        self.asked.append(("configmap", namespace, name))
        if name not in self.configmaps:
            raise NotFound("configmap", namespace, name)
        return {"metadata": {"name": name, "namespace": namespace}, "data": dict(self.configmaps[name])}

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        self.asked.append(("secret", namespace, name))
        if name not in self.secrets:
            raise NotFound("secret", namespace, name)
        data = {key: base64.b64encode(value).decode() for key, value in self.secrets[name].items()}
        secret = {"metadata": {"name": name, "namespace": namespace}, "data": data}
        return {**secret, "type": self.types[name]} if name in self.types else secret
