"""Type checks of an object's JSON against its kind's model, worded as the API server's JSON decoder words them.

The API server decodes a body into Go structs before anything else, so a value of the wrong JSON type
(``"80"`` for ``containerPort``, ``1`` for a label or an env value) is refused with a 400
``Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field
ContainerPort.spec.containers.ports.containerPort of type int``. A stored object therefore always parses
with the models the node reads it with. Missing fields and bad values are validation's business (422).
A ``null`` decodes to nothing in Go, so a null where the model wants a value is dropped from the object,
as decoding and encoding it again would drop it.
"""

from __future__ import annotations

import base64
import typing
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from edgeworkers.k8s.schema import KINDS, field_shape

# pydantic's error type -> the Go type the decoder names.
_GO_TYPES = {"string_type": "string", "int_type": "int", "bool_type": "bool", "float_type": "float64",
             "list_type": "[]", "dict_type": "map[string]", "model_type": "struct",
             "model_attributes_type": "struct"}


def type_error(kind: str, obj: dict[str, Any]) -> str | None:
    """The decoder's message for the first value of a wrong JSON type in ``obj``, or None; drops the
    nulls of fields that take none from ``obj`` on the way."""
    model = KINDS.get(kind)
    if model is None:
        return None
    while True:
        try:
            model.model_validate_json(orjson.dumps(obj), strict=True)
            return None
        except ValidationError as exc:
            errors = [e for e in exc.errors() if e["type"] in _GO_TYPES]
        dropped = [_drop_null(obj, e["loc"]) for e in errors if e["input"] is None]
        if not any(dropped):
            return _message(model, errors[0]["loc"], errors[0]["type"], errors[0]["input"]) if errors else None


def _drop_null(obj: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Remove the null map entry at ``loc`` (a path of keys and indices, perhaps ending in a union's tag)."""
    parent: Any = None
    node: Any = obj
    key: int | str = ""
    for part in loc:
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) \
                and 0 <= part < len(node):
            parent, key, node = node, part, node[part]
        else:
            break
    if isinstance(parent, dict) and node is None:
        del parent[key]
        return True
    return False


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _message(model: type[BaseModel], loc: tuple[int | str, ...], error_type: str, value: Any) -> str:
    """``cannot unmarshal <json type> into Go struct field <Struct>.<path> of type <type>``: the path names
    fields only (no list indices or map keys), the struct is the innermost one holding the field."""
    struct, path = model.__name__, []
    current: type[BaseModel] | None = model
    annotation: Any = None
    shape = "model"  # of the value at the path so far: "model", "list" or "map" (of models), "any"
    for part in loc:
        if shape in ("list", "map"):  # an index or a key: no part of Go's path
            shape = "model"
            continue
        if current is None or not isinstance(part, str):
            break
        fields = {info.alias or name: info.annotation for name, info in current.model_fields.items()}
        if part not in fields:
            break
        struct, annotation = current.__name__, fields[part]
        path.append(part)
        shape, current = field_shape(annotation)
    if {int, str} <= set(typing.get_args(annotation)):
        return _sentence(value, struct, path, "intstr.IntOrString")
    go_type = _GO_TYPES[error_type]
    if go_type == "struct":
        go_type = f"v1.{current.__name__}" if current is not None else "struct"
    elif go_type in ("[]", "map[string]"):
        go_type += f"v1.{current.__name__}" if current is not None else "string"
    return _sentence(value, struct, path, go_type)


def _sentence(value: Any, struct: str, path: list[str], go_type: str) -> str:
    return f"json: cannot unmarshal {_json_type(value)} into Go struct field {struct}.{'.'.join(path)} of type {go_type}"


# []byte fields of the kinds the cloud stores: on the wire a base64 string each, as Go's encoding/json writes them.
BYTES_FIELDS = {"Secret": "data", "ConfigMap": "binaryData"}
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NEWLINES = frozenset(b"\r\n")


def go_base64(text: str) -> bytes:
    """``text`` decoded as Go's ``base64.StdEncoding.Decode`` (encoding/json's way with ``[]byte``) decodes it:
    ``\\r`` and ``\\n`` are skipped anywhere, padding is required; a ValueError carries Go's message and offset
    (``illegal base64 data at input byte 4``)."""
    src = text.encode()
    kept = bytearray()  # the alphabet's characters and the padding, in order
    si = j = 0  # read position; characters of the current quantum
    while si < len(src):
        c, si = src[si], si + 1
        if c in _NEWLINES:
            continue
        if c in _B64_ALPHABET:
            kept.append(c)
            j = (j + 1) % 4
            continue
        if c != ord("=") or j < 2:  # a stray character, or padding where none may be
            raise _corrupt(si - 1)
        if j == 2:  # "==" expected: the second one, newlines allowed between
            while si < len(src) and src[si] in _NEWLINES:
                si += 1
            if si == len(src):
                raise _corrupt(len(src))
            if src[si] != ord("="):
                raise _corrupt(si - 1)
            si += 1
        while si < len(src) and src[si] in _NEWLINES:
            si += 1
        if si < len(src):  # data after the padding
            raise _corrupt(si)
        return base64.b64decode(bytes(kept) + b"=" * (4 - j))
    if j:  # the input ends inside a quantum, without its padding
        raise _corrupt(len(src) - j)
    return base64.b64decode(bytes(kept))


def _corrupt(offset: int) -> ValueError:
    return ValueError(f"illegal base64 data at input byte {offset}")


def canonical_bytes(kind: str, obj: dict[str, Any]) -> str | None:
    """Rewrite ``obj``'s ``[]byte`` values (a Secret's ``data``, a ConfigMap's ``binaryData``) as the API server
    stores them: decoded as Go decodes them, encoded again without line breaks. Returns the decoder's message for
    the first value that does not decode (``obj`` left as it was), else None. Run after ``type_error``."""
    field = BYTES_FIELDS.get(kind)
    values = obj.get(field) if field else None
    if not isinstance(values, dict):
        return None
    canonical = {}
    for key, value in values.items():
        try:
            canonical[key] = base64.b64encode(go_base64(value)).decode() if isinstance(value, str) else value
        except ValueError as exc:
            return str(exc)
    obj[field] = canonical
    return None
