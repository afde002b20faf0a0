"""Kubernetes' protobuf wire format, decoded to the JSON Kubernetes writes for the same object.

kubectl's typed clients POST `application/vnd.kubernetes.protobuf` (`kubectl create configmap|secret|namespace|
deployment|job|service`, `kubectl auth whoami`): the magic `k8s\\0`, then a `runtime.Unknown{1: TypeMeta{1: apiVersion,
2: kind}, 2: raw, 3: contentEncoding, 4: contentType}` whose `raw` is the object's message.

Every served kind is decoded by one reader driven by ``protobuf_schema.json.gz`` (``ops/gen_protobuf.py`` writes it
from Kubernetes' ``generated.proto`` files and the Go structs' tags; loaded once, on the first protobuf body). As Go's
``encoding/json`` would write the decoded struct: a field absent from the wire (a nil pointer, an empty list or map) is
absent; a zero scalar is left out only when its Go field is a non-pointer ``omitempty`` one (gogo-protobuf writes every
non-pointer field, zero or not); nested structs are always present. Fields this decoder does not know are skipped, as
protobuf readers do.
"""
from __future__ import annotations

import base64
import gzip
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import orjson

from edgeworkers.k8s.timefmt import format_time, micro_time

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



def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


SCHEMA_FILE = Path(__file__).with_name("protobuf_schema.json.gz")
# A schema row is [field number, JSON name, type, flags]: the type a scalar, a message's full name, or
# ["map", value type]; the flags say what the Go field's tags and type say.
REPEATED, POINTER, OMITEMPTY, INLINE = 1, 2, 4, 8
SCALARS = frozenset({"string", "bytes", "bool", "int32", "int64"})
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_ABSENT = object()  # what a special type's reader returns for a value Go's JSON leaves out (a zero Time)


class _FieldError(ValueError):
    """A malformed field, with the JSON path to it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _moment(data: bytes) -> datetime | None:
    """A ``Time``/``MicroTime`` ({1: seconds, 2: nanos}); a zero time is written as no bytes at all."""
    if not data:
        return None
    seconds = nanos = 0
    for number, _, value in _fields(data):
        if number == 1:
            seconds = _signed(_int(value))
        elif number == 2:
            nanos = _signed(_int(value))
    try:
        return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"time out of range: {exc}") from None


def _time(data: bytes) -> object:
    moment = _moment(data)
    return _ABSENT if moment is None else format_time(moment)


def _micro_time(data: bytes) -> object:
    moment = _moment(data)
    return _ABSENT if moment is None else micro_time(moment)


def _int_or_string(data: bytes) -> int | str:
    """``IntOrString{1: type (0 int, 1 string), 2: intVal, 3: strVal}``."""
    kind, number_value, text = 0, 0, ""
    for number, _, value in _fields(data):
        if number == 1:
            kind = _int(value)
        elif number == 2:
            number_value = _signed(_int(value))
        elif number == 3:
            text = _text(value)
    return text if kind == 1 else number_value


def _quantity(data: bytes) -> str:
    """``Quantity{1: string}``: its string form, as its JSON is."""
    text = ""
    for number, _, value in _fields(data):
        if number == 1:
            text = _text(value)
    return text


def _embedded_json(data: bytes) -> object:
    """``RawExtension{1: raw}`` and ``FieldsV1{1: Raw}``: JSON bytes, written as they are in the object's JSON."""
    raw = b""
    for number, _, value in _fields(data):
        if number == 1:
            raw = _raw(value)
    if not raw:
        return _ABSENT
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"embedded object is not JSON: {exc}") from None


def _string_list(data: bytes) -> list[str]:
    """``ExtraValue{1: repeated items}``, a Go ``[]string``."""
    return [_text(value) for number, _, value in _fields(data) if number == 1]


# Messages whose Go types marshal their own JSON.
SPECIAL: dict[str, Callable[[bytes], object]] = {
    f"{_META}Time": _time,
    f"{_META}MicroTime": _micro_time,
    f"{_META}FieldsV1": _embedded_json,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _embedded_json,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": _quantity,
    "k8s.io.api.authentication.v1.ExtraValue": _string_list,
}

_Type = str | tuple[str, str]


@cache
def _schema() -> tuple[dict[tuple[str, str], str], dict[str, dict[int, tuple[str, _Type, int]]]]:
    """(apiVersion, kind) -> message, and message -> field number -> row: read once, when first needed."""
    data = orjson.loads(gzip.decompress(SCHEMA_FILE.read_bytes()))
    kinds = {(gvk.rsplit("/", 1)[0], gvk.rsplit("/", 1)[1]): name for gvk, name in data["kinds"].items()}
    messages = {name: {number: (json_name, tuple(type_) if isinstance(type_, list) else type_, flags)
                       for number, json_name, type_, flags in rows}
                for name, rows in data["messages"].items()}
    return kinds, messages


def _scalar(type_: str, value: int | bytes) -> object:
    if type_ == "string":
        return _text(value)
    if type_ == "bytes":
        return base64.b64encode(_raw(value)).decode("ascii")
    if type_ == "bool":
        return bool(_int(value))
    return _signed(_int(value))  # int32 and int64: a negative int32 is sign-extended to 64 bits on the wire


def _value(type_: str, value: int | bytes) -> object:
    """One value of a scalar or message type."""
    if type_ in SCALARS:
        return _scalar(type_, value)
    if type_ in SPECIAL:
        return SPECIAL[type_](_raw(value))
    return _message(type_, _raw(value))


def _packed(type_: str, data: bytes) -> list:
    """A packed repeated varint field (proto3 writers pack them; gogo's proto2 ones do not)."""
    values, pos = [], 0
    while pos < len(data):
        number, pos = _varint(data, pos)
        values.append(_scalar(type_, number))
    return values


def _map_entry(value_type: str, data: int | bytes) -> tuple[str, object]:
    key, item = "", None
    for number, _, value in _fields(_raw(data)):
        if number == 1:
            key = _text(value)
        elif number == 2:
            item = _value(value_type, value)
    if item is None:  # an entry without its value holds the zero value
        item = _value(value_type, 0 if value_type in ("bool", "int32", "int64") else b"")
    return key, item


def _message(name: str, data: bytes) -> dict:
    """One message decoded to its JSON object, by the schema."""
    rows = _schema()[1][name]
    out: dict = {}
    for number, wire, value in _fields(data):
        if number not in rows:
            continue
        json_name, type_, flags = rows[number]
        try:
            if isinstance(type_, tuple):
                key, item = _map_entry(type_[1], value)
                out.setdefault(json_name, {})[key] = item
            elif flags & REPEATED:
                items = out.setdefault(json_name, [])
                if wire == _BYTES and type_ in ("bool", "int32", "int64"):
                    items.extend(_packed(type_, _raw(value)))
                else:
                    items.append(_value(type_, value))
            elif flags & INLINE:
                out.update(_message(type_, _raw(value)))
            else:
                out[json_name] = _value(type_, value)
        except _FieldError as exc:
            raise _FieldError(f"{json_name}.{exc.path}", exc.reason) from None
        except ValueError as exc:
            raise _FieldError(json_name, str(exc)) from None
    for json_name, type_, flags in rows.values():  # what Go's JSON leaves out
        value = out.get(json_name, _ABSENT)
        if value is _ABSENT and json_name in out:
            del out[json_name]
        elif (flags & OMITEMPTY and not flags & (POINTER | REPEATED) and type_ in SCALARS
              and value in ("", 0, False)):
            del out[json_name]
    return out


def decode_object(body: bytes) -> dict:
    """A protobuf request body as the Kubernetes JSON object. ValueError for unknown kinds or malformed bytes."""
    if not body.startswith(MAGIC):
        raise ValueError("the protobuf body does not start with the Kubernetes magic 'k8s\\x00'")
    type_meta, raw, encoding = b"", b"", ""
    for number, _, value in _fields(body[len(MAGIC):]):
        if number == 1:
            type_meta = _raw(value)
        elif number == 2:
            raw = _raw(value)
        elif number == 3:
            encoding = _text(value)
    api_version = kind = ""
    for number, _, value in _fields(type_meta):
        if number == 1:
            api_version = _text(value)
        elif number == 2:
            kind = _text(value)
    if encoding:
        raise ValueError(f"unsupported protobuf content encoding {encoding!r}")
    message = _schema()[0].get((api_version, kind))
    if message is None:
        raise ValueError(f"no protobuf decoder for {api_version or '<none>'}/{kind or '<none>'}")
    return {"apiVersion": api_version, "kind": kind, **_message(message, raw)}
