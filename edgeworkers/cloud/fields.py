"""Decoding a body as the API server does: values of the wrong JSON type (or base64 that Go cannot decode) are refused,
and ``fieldValidation`` decides what happens to fields the schema does not know (Strict, Warn, Ignore)."""
from __future__ import annotations

import re

from edgeworkers.cloud.resources import Resource
from edgeworkers.k8s import status
from edgeworkers.k8s.decoding import canonical_bytes, type_error
from edgeworkers.k8s.schema import unknown_fields

_INDEX = re.compile(r"\[(\d+)\]")


def check_fields(resource: Resource, obj: dict, mode: str) -> list[str]:
    """Refuse a value of the wrong type or undecodable base64 (400), store ``[]byte`` values in Go's canonical
    base64 (line breaks dropped), then apply ``mode`` to ``obj``'s unknown fields; returns the
    warnings to send.

    Strict rejects them with the API server's 400 ``strict decoding error``; Warn (the server's default)
    and Ignore drop them, Warn also reporting each one.
    """
    wrong_type = type_error(resource.kind, obj) or canonical_bytes(resource.kind, obj)
    if wrong_type is not None:
        raise _undecodable(resource, wrong_type)
    unknown = unknown_fields(resource.kind, obj)
    if not unknown:
        return []
    if mode == "Strict":
        raise _undecodable(resource, "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown))
    for path in unknown:
        drop_path(obj, path)
    return [f'unknown field "{p}"' for p in unknown] if mode != "Ignore" else []


def _undecodable(resource: Resource, detail: str) -> status.APIError:
    version = resource.api_version.rpartition("/")[2]
    return status.bad_request(f'{resource.kind} in version "{version}" cannot be handled as a {resource.kind}: {detail}')


def _path_keys(path: str) -> list[str | int]:
    """``spec.containers[0].foo`` as keys; an empty name is a key too (``metadata.`` names the key "")."""
    keys: list[str | int] = []
    for part in path.split("."):
        name, _, indexes = part.partition("[")
        keys.append(name)
        if indexes:
            keys.extend(int(i) for i in _INDEX.findall("[" + indexes))
    return keys


def drop_path(obj: dict, path: str) -> None:
    """Remove the field at a path like ``spec.containers[0].foo``; a missing path is left alone."""
    keys = _path_keys(path)
    node: object = obj
    for key in keys[:-1]:
        try:
            node = node[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict) and isinstance(keys[-1], str):
        node.pop(keys[-1], None)
