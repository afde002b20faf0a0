"""kube-apiserver's DefaultTolerationSeconds admission plugin: every pod tolerates a node that is not ready or
unreachable for 300 s (``NoExecute``), unless it says otherwise.

A pod written without a toleration of ``node.kubernetes.io/not-ready`` (or of ``node.kubernetes.io/unreachable``) with
effect ``NoExecute`` (a toleration with an empty key or an empty effect counts) gets one, ``operator: Exists``,
``tolerationSeconds: 300``, on create and update, never on a subresource. The taint eviction controller
(``tainteviction.py``) reads them to evict pods 300 s after their node went away, from nodes that are not autonomous
only (``nodelifecycle.py``; autonomy is the default: README "The cloud API").
"""
from __future__ import annotations

from typing import Any

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300  # kube-apiserver's --default-not-ready/unreachable-toleration-seconds


def _tolerates(toleration: Any, key: str) -> bool:
    if not isinstance(toleration, dict):
        return False
    return toleration.get("key") in (key, "", None) and toleration.get("effect") in ("NoExecute", "", None)


def default_toleration_seconds(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` with the default NoExecute tolerations it lacks appended to ``spec.tolerations`` (in place)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return pod
    tolerations = spec.get("tolerations")
    tolerations = list(tolerations) if isinstance(tolerations, list) else []
    for key in (NOT_READY, UNREACHABLE):
        if not any(_tolerates(t, key) for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    spec["tolerations"] = tolerations
    return pod
