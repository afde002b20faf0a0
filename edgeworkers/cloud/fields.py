"""``fieldValidation``: what happens to fields the schema does not know (Strict, Warn, Ignore)."""
from __future__ import annotations

import re

from edgeworkers.cloud.resources import Resource
from edgeworkers.k8s import status
from edgeworkers.k8s.schema import unknown_fields

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def check_unknown_fields(resource: Resource, obj: dict, mode: str) -> list[str]:
    """Apply ``mode`` to ``obj``'s unknown fields; returns the warnings to send.

    Strict rejects them with the API server's 400 ``strict decoding error``; Warn (the server's default)
    and Ignore drop them, Warn also reporting each one.
    """
    unknown = unknown_fields(resource.kind, obj)
    if not unknown:
        return []
    if mode == "Strict":
        raise status.bad_request(
            f'{resource.kind} in version "{resource.api_version.rpartition("/")[2]}" cannot be handled as a '
            f"{resource.kind}: strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown))
    for path in unknown:
        drop_path(obj, path)
    return [f'unknown field "{p}"' for p in unknown] if mode != "Ignore" else []


def drop_path(obj: dict, path: str) -> None:
    """Remove the field at a path like ``spec.containers[0].foo``; a missing path is left alone."""
    keys: list[str | int] = [name if name else int(index) for name, index in _TOKEN.findall(path)]
    node: object = obj
    for key in keys[:-1]:
        try:
            node = node[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict) and isinstance(keys[-1], str):
        node.pop(keys[-1], None)
