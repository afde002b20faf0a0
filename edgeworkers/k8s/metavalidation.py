"""apimachinery's object-metadata rules (``ValidateObjectMeta``, labels, annotations) and the small
helpers every validator here shares; validators read raw JSON, so every access tolerates wrong types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeworkers.k8s import naming
from edgeworkers.k8s.status import FieldError, forbidden_field, invalid_value, required, too_long

TOTAL_ANNOTATION_SIZE = 256 * 1024
FIELD_IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"

NameFn = Callable[[str, bool], list[str]]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def items(value: Any) -> list[dict[str, Any]]:
    """The entries of a list of objects, each as a dict (a malformed entry reads as empty)."""
    return [as_dict(item) for item in as_list(value)]


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def invalid_each(path: str, value: Any, messages: list[str]) -> list[FieldError]:
    """One ``Invalid value`` per message, the way validators turn ``Is*`` checks into errors."""
    return [invalid_value(path, value, msg) for msg in messages]


def nonnegative(path: str, value: Any) -> list[FieldError]:
    number = as_int(value)
    return [invalid_value(path, number, NEGATIVE)] if number is not None and number < 0 else []


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """Keys are qualified names, values label values; errors name the map, not the key."""
    errs: list[FieldError] = []
    for key, value in as_dict(labels).items():
        errs += invalid_each(path, key, naming.is_qualified_name(key))
        errs += invalid_each(path, value, naming.is_valid_label_value(str(value)))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    annotations = as_dict(annotations)
    errs: list[FieldError] = []
    for key in annotations:
        errs += invalid_each(path, key, naming.is_qualified_name(key.lower()))
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE))
    return errs


def validate_object_meta(
    meta: dict[str, Any], namespaced: bool, name_fn: NameFn = naming.name_is_dns1123_subdomain
) -> list[FieldError]:
    """``ValidateObjectMeta``; a missing name passes when ``generateName`` is there to supply one."""
    meta = as_dict(meta)
    errs: list[FieldError] = []
    generate_name, name = meta.get("generateName") or "", meta.get("name") or ""
    if generate_name:
        errs += invalid_each("metadata.generateName", generate_name, name_fn(generate_name, True))
    if name:
        errs += invalid_each("metadata.name", name, name_fn(name, False))
    elif not generate_name:
        errs.append(required("metadata.name", "name or generateName is required"))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(required("metadata.namespace"))
        else:
            errs += invalid_each("metadata.namespace", namespace, naming.name_is_dns1123_label(namespace))
    elif namespace:
        errs.append(forbidden_field("metadata.namespace", "not allowed on this type"))
    errs += nonnegative("metadata.generation", meta.get("generation"))
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    errs += validate_annotations(meta.get("annotations"), "metadata.annotations")
    for i, finalizer in enumerate(as_list(meta.get("finalizers"))):
        errs += invalid_each(f"metadata.finalizers[{i}]", finalizer, naming.is_qualified_name(str(finalizer)))
    return errs


def validate_object_meta_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """Identity fields never change (the server fills in a missing uid, so only a different one is refused)."""
    old, new = as_dict(old), as_dict(new)
    errs = []
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if new.get(key) and new.get(key) != old.get(key):
            errs.append(invalid_value(f"metadata.{key}", new.get(key), FIELD_IMMUTABLE))
    return errs


def validate_no_new_finalizers(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """An object being deleted takes no new finalizer (``ValidateNoNewFinalizers``)."""
    old, new = as_dict(old), as_dict(new)
    if not old.get("deletionTimestamp"):
        return []
    extra = sorted({str(f) for f in as_list(new.get("finalizers"))} - {str(f) for f in as_list(old.get("finalizers"))})
    if not extra:
        return []
    found = ", ".join(f'"{f}"' for f in extra)  # Go's %#v of a []string
    return [forbidden_field("metadata.finalizers", "no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers []string{{{found}}}")]
