"""Kubernetes' protobuf wire format, decoded to Kubernetes JSON (only what kubectl sends as protobuf).

`kubectl create configmap|secret generic|namespace` and `kubectl auth whoami` POST `application/vnd.kubernetes.protobuf`: the magic
`k8s\\0`, then a `runtime.Unknown{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
4: contentType}` whose `raw` is the object's message. Field numbers are those of kubernetes'
`staging/src/k8s.io/api/core/v1/generated.proto` and apimachinery's `meta/v1/generated.proto`.
Fields this decoder does not know are skipped, as protobuf readers do.
"""
from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

from edgeworkers.k8s.timefmt import format_time

MAGIC = b"k8s\x00"

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise ValueError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message; bytes for length-delimited fields."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("invalid field number 0")
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _BYTES:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated length-delimited field")
            value, pos = data[pos:pos + length], pos + length
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(data):
                raise ValueError("truncated fixed-size field")
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ValueError("expected a length-delimited string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 in a string field: {exc}") from None


def _raw(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("expected a length-delimited field")
    return value


def _map_entry(value: int | bytes, as_bytes: bool) -> tuple[str, str]:
    key, item = "", b"" if as_bytes else ""
    for number, _, field in _fields(_raw(value)):
        if number == 1:
            key = _text(field)
        elif number == 2:
            item = _raw(field) if as_bytes else _text(field)
    if as_bytes:
        return key, base64.b64encode(item).decode("ascii")
    return key, item


def _time(value: int | bytes) -> str:
    seconds = 0
    for number, _, field in _fields(_raw(value)):
        if number == 1 and isinstance(field, int):
            seconds = _signed(field)
    return format_time(seconds)


# A field decoder: (json name, how to read the value, repeated/map kind).
_Reader = Callable[[int | bytes], object]
_STRING, _BOOL, _INT = "string", "bool", "int"
_MAP_STRING, _MAP_BYTES, _LIST = "map<string,string>", "map<string,bytes>", "repeated"


def _decode(data: bytes, schema: dict[int, tuple[str, str | _Reader]]) -> dict:
    out: dict = {}
    for number, _, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind == _STRING:
            if text := _text(value):
                out[name] = text
        elif kind == _BOOL:
            out[name] = bool(value)
        elif kind == _INT:
            if not isinstance(value, int):
                raise ValueError(f"{name}: expected an integer")
            if number_value := _signed(value):
                out[name] = number_value
        elif kind in (_MAP_STRING, _MAP_BYTES):
            key, item = _map_entry(value, kind == _MAP_BYTES)
            out.setdefault(name, {})[key] = item
        elif kind == _LIST:
            out.setdefault(name, []).append(_text(value))
        else:
            out[name] = kind(value)  # a nested message
    return out


def _owner_reference(value: int | bytes) -> dict:
    return _decode(_raw(value), {
        1: ("kind", _STRING), 3: ("name", _STRING), 4: ("uid", _STRING), 5: ("apiVersion", _STRING),
        6: ("controller", _BOOL), 7: ("blockOwnerDeletion", _BOOL),
    })


def _object_meta(value: int | bytes) -> dict:
    meta = _decode(_raw(value), {
        1: ("name", _STRING), 2: ("generateName", _STRING), 3: ("namespace", _STRING), 4: ("selfLink", _STRING),
        5: ("uid", _STRING), 6: ("resourceVersion", _STRING), 7: ("generation", _INT),
        8: ("creationTimestamp", _time), 9: ("deletionTimestamp", _time), 10: ("deletionGracePeriodSeconds", _INT),
        11: ("labels", _MAP_STRING), 12: ("annotations", _MAP_STRING), 14: ("finalizers", _LIST),
    })
    owners = [_owner_reference(v) for n, _, v in _fields(_raw(value)) if n == 13]
    if owners:
        meta["ownerReferences"] = owners
    if meta.get("creationTimestamp") == "1970-01-01T00:00:00Z":  # a zero Time is null in JSON
        del meta["creationTimestamp"]
    return meta


def _configmap(raw: bytes) -> dict:
    return _decode(raw, {1: ("metadata", _object_meta), 2: ("data", _MAP_STRING), 3: ("binaryData", _MAP_BYTES),
                         4: ("immutable", _BOOL)})


def _secret(raw: bytes) -> dict:
    return _decode(raw, {1: ("metadata", _object_meta), 2: ("data", _MAP_BYTES), 3: ("type", _STRING),
                         4: ("stringData", _MAP_STRING), 5: ("immutable", _BOOL)})


def _namespace(raw: bytes) -> dict:
    return _decode(raw, {
        1: ("metadata", _object_meta),
        2: ("spec", lambda v: _decode(_raw(v), {1: ("finalizers", _LIST)})),
        3: ("status", lambda v: _decode(_raw(v), {1: ("phase", _STRING)})),
    })


def _self_subject_review(raw: bytes) -> dict:
    return _decode(raw, {1: ("metadata", _object_meta)})  # its status is the server's to fill


def _token_review(raw: bytes) -> dict:
    return _decode(raw, {
        1: ("metadata", _object_meta),
        2: ("spec", lambda v: _decode(_raw(v), {1: ("token", _STRING), 2: ("audiences", _LIST)})),
    })


_KINDS: dict[tuple[str, str], Callable[[bytes], dict]] = {
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Secret"): _secret,
    ("v1", "Namespace"): _namespace,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _self_subject_review,
    ("authentication.k8s.io/v1", "TokenReview"): _token_review,
}


def decode_object(body: bytes) -> dict:
    """A protobuf request body as the Kubernetes JSON object. ValueError for unknown kinds or malformed bytes."""
    if not body.startswith(MAGIC):
        raise ValueError("the protobuf body does not start with the Kubernetes magic 'k8s\\x00'")
    unknown = _decode(body[len(MAGIC):], {
        1: ("typeMeta", lambda v: _decode(_raw(v), {1: ("apiVersion", _STRING), 2: ("kind", _STRING)})),
        2: ("raw", _raw),
        3: ("contentEncoding", _STRING),
    })
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if unknown.get("contentEncoding"):
        raise ValueError(f"unsupported protobuf content encoding {unknown['contentEncoding']!r}")
    decoder = _KINDS.get((api_version, kind))
    if decoder is None:
        raise ValueError(f"no protobuf decoder for {api_version or '<none>'}/{kind or '<none>'}")
    return {"apiVersion": api_version, "kind": kind, **decoder(unknown.get("raw", b""))}
