"""Kubernetes' own validation rules for the kinds the cloud stores, on raw (defaulted) JSON.

Every error is reported at once, with Kubernetes' field paths and wording (``FieldError``), so that
``status.invalid()`` answers what a real API server answers. Pod rules live in ``podvalidation``
(with ``containervalidation`` and ``volumevalidation``), metadata rules in ``metavalidation``; this module is the one place callers import them from.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from edgeworkers.k8s import naming
from edgeworkers.k8s.metavalidation import (
    FIELD_IMMUTABLE,
    as_dict,
    invalid_each,
    items,
    validate_no_new_finalizers,
    validate_object_meta,
    validate_object_meta_update,
)
from edgeworkers.k8s.podvalidation import (
    TAINT_EFFECTS,
    validate_pod,
    validate_pod_ephemeral_containers_update,
    validate_pod_update,
)
from edgeworkers.k8s.schema import unknown_fields
from edgeworkers.k8s.status import FieldError, forbidden_field, invalid_value, not_supported, required, too_long
from edgeworkers.k8s.volumevalidation import validate_quantity

__all__ = [
    "unknown_fields",
    "validate_configmap",
    "validate_configmap_update",
    "validate_namespace",
    "validate_no_new_finalizers",
    "validate_node",
    "validate_object_meta",
    "validate_pod",
    "validate_pod_update",
    "validate_pod_ephemeral_containers_update",
    "validate_secret",
    "validate_secret_update",
]

MAX_SECRET_SIZE = 1024 * 1024
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


def _decoded_size(value: Any) -> int | None:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return None


def validate_configmap(obj: dict[str, Any]) -> list[FieldError]:
    obj = as_dict(obj)
    errs = validate_object_meta(as_dict(obj.get("metadata")), namespaced=True)
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    size = 0
    for key, value in data.items():
        errs += invalid_each(f"data[{key}]", key, naming.is_config_map_key(key))
        if key in binary:
            errs.append(invalid_value(f"data[{key}]", key, "duplicate of key present in binaryData"))
        size += len(str(value).encode())
    for key, value in binary.items():
        errs += invalid_each(f"binaryData[{key}]", key, naming.is_config_map_key(key))
        if key in data:
            errs.append(invalid_value(f"binaryData[{key}]", key, "duplicate of key present in data"))
        size += _decoded_size(value) or len(str(value))
    if size > MAX_SECRET_SIZE:
        errs.append(too_long("[]", MAX_SECRET_SIZE))  # Kubernetes' path for "the whole object"
    return errs


def _immutable_data(old: dict[str, Any], new: dict[str, Any], bags: tuple[str, ...]) -> list[FieldError]:
    if old.get("immutable") is not True:
        return []
    errs = [forbidden_field("immutable", IMMUTABLE_WHEN_SET)] if new.get("immutable") is not True else []
    return errs + [
        forbidden_field(bag, IMMUTABLE_WHEN_SET) for bag in bags if (old.get(bag) or {}) != (new.get(bag) or {})
    ]


def validate_configmap_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    old, new = as_dict(old), as_dict(new)
    errs = validate_object_meta_update(as_dict(old.get("metadata")), as_dict(new.get("metadata")))
    return errs + validate_configmap(new) + _immutable_data(old, new, ("data", "binaryData"))


def validate_secret(obj: dict[str, Any]) -> list[FieldError]:
    """Secret rules on the stored form (``stringData`` already merged into base64 ``data``)."""
    obj = as_dict(obj)
    errs = validate_object_meta(as_dict(obj.get("metadata")), namespaced=True)
    data = as_dict(obj.get("data"))
    size = 0
    for key, value in data.items():
        errs += invalid_each(f"data[{key}]", key, naming.is_config_map_key(key))
        decoded = _decoded_size(value)
        if decoded is None:
            errs.append(invalid_value(f"data[{key}]", "<secret contents redacted>", "illegal base64 data"))
        size += decoded or 0
    for key in as_dict(obj.get("stringData")):
        errs += invalid_each(f"stringData[{key}]", key, naming.is_config_map_key(key))
    if size > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    kind = obj.get("type")
    if kind == "kubernetes.io/tls":
        errs += [required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data]
    elif kind == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        errs.append(required("data[.dockerconfigjson]"))
    elif kind == "kubernetes.io/basic-auth" and not ({"username", "password"} & data.keys()):
        errs.append(required("data[username]"))
    return errs


def validate_secret_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    old, new = as_dict(old), as_dict(new)
    errs = validate_object_meta_update(as_dict(old.get("metadata")), as_dict(new.get("metadata")))
    errs += validate_secret(new)
    if (old.get("type") or "Opaque") != (new.get("type") or "Opaque"):
        errs.append(invalid_value("type", new.get("type"), FIELD_IMMUTABLE))
    return errs + _immutable_data(old, new, ("data",))


def validate_node(obj: dict[str, Any]) -> list[FieldError]:
    obj = as_dict(obj)
    errs = validate_object_meta(as_dict(obj.get("metadata")), namespaced=False)
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    for i, taint in enumerate(items(spec.get("taints"))):
        at, key = f"spec.taints[{i}]", str(taint.get("key") or "")
        errs += invalid_each(f"{at}.key", key, naming.is_qualified_name(key))
        if taint.get("value"):
            errs += invalid_each(f"{at}.value", taint["value"], naming.is_valid_label_value(str(taint["value"])))
        effect = taint.get("effect") or ""
        if not effect:
            errs.append(required(f"{at}.effect"))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(f"{at}.effect", effect, TAINT_EFFECTS))
    for bag in ("capacity", "allocatable"):
        for name, amount in as_dict(status.get(bag)).items():
            errs += validate_quantity(f"status.{bag}[{name}]", amount)
    return errs


def validate_namespace(obj: dict[str, Any]) -> list[FieldError]:
    """Namespaces are cluster-scoped and named by DNS-1123 labels."""
    meta = as_dict(as_dict(obj).get("metadata"))
    return validate_object_meta(meta, namespaced=False, name_fn=naming.name_is_dns1123_label)
