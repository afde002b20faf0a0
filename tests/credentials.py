"""What tests read from issued credentials."""
from __future__ import annotations

from pathlib import Path

import yaml


def kubeconfig_token(kubeconfig: Path) -> str:
    """The bearer token a node's kubeconfig names (by ``tokenFile``, relative to the kubeconfig, or inline)."""
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    return user.get("token") or (kubeconfig.parent / user["tokenFile"]).read_text().strip()
