"""Strict field validation: which fields of an object are not in the core/v1 schema.

The schema is the models' declared fields, so a field the models declare (even as ``Any``) is known
and anything below an ``Any`` field is accepted as is.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel

from edgeworkers.k8s.configmap import ConfigMap
from edgeworkers.k8s.event import Event
from edgeworkers.k8s.lease import Lease
from edgeworkers.k8s.namespace import Namespace
from edgeworkers.k8s.node import Node
from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.secret import Secret
from edgeworkers.k8s.serviceaccount import ServiceAccount

KINDS: dict[str, type[BaseModel]] = {
    "Pod": Pod,
    "ConfigMap": ConfigMap,
    "Secret": Secret,
    "Node": Node,
    "Event": Event,
    "Namespace": Namespace,
    "Lease": Lease,
    "ServiceAccount": ServiceAccount,
}


def field_shape(annotation: Any) -> tuple[str, type[BaseModel] | None]:
    """``("model" | "list" | "map" | "any", model class)`` for a field's annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return field_shape(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            shape = field_shape(arg)
            if shape[1] is not None:
                return shape
        return "any", None
    if origin is list:
        inner = field_shape(typing.get_args(annotation)[0])
        return ("list", inner[1]) if inner[0] == "model" else ("any", None)
    if origin is dict:
        inner = field_shape(typing.get_args(annotation)[1])
        return ("map", inner[1]) if inner[0] == "model" else ("any", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "any", None


def _walk(model: type[BaseModel], obj: dict[str, Any], path: str, out: list[str]) -> None:
    fields = {info.alias or name: info.annotation for name, info in model.model_fields.items()}
    for key, value in obj.items():
        here = f"{path}.{key}" if path else key
        if key not in fields:
            out.append(here)
            continue
        shape, inner = field_shape(fields[key])
        if inner is None:
            continue
        if shape == "model" and isinstance(value, dict):
            _walk(inner, value, here, out)
        elif shape == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _walk(inner, item, f"{here}[{i}]", out)
        elif shape == "map" and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict):
                    _walk(inner, item, f"{here}.{name}", out)


def unknown_fields(kind: str, obj: dict[str, Any]) -> list[str]:
    """Paths like ``spec.containers[0].imagex`` of fields core/v1 does not define (none for unknown kinds).

    Written as the API server's strict error names them: ``unknown field "spec.containers[0].imagex"``.
    """
    model = KINDS.get(kind)
    out: list[str] = []
    if model is not None and isinstance(obj, dict):
        _walk(model, obj, "", out)
    return out
