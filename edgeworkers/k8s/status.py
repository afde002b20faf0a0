"""Kubernetes ``Status`` errors and field errors, worded exactly as the API server words them.

``FieldError.message()`` follows apimachinery's ``field.Error.Error()``; the builders follow
``k8s.io/apimachinery/pkg/api/errors`` (``NewNotFound``, ``NewInvalid`` ...), so kubectl prints
the same lines it prints against a real cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

# field.ErrorType -> its canonical text (ErrorType.String()).
ERROR_TYPES = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
# Types whose message never shows the bad value.
_VALUELESS = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): printable characters kept, the rest as Go escapes."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


class StringMap(dict):
    """A ``map[string]string`` field value (a template's labels), which Go's ``%#v`` renders ``map[string]string{...}``
    where a struct's value reads as JSON here."""


def _go_value(value: Any) -> str:
    """Render a bad value the way Go's ``%v`` / ``%q`` does in field errors."""
    if isinstance(value, StringMap):
        return "map[string]string{" + ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}"
                                                for k, v in sorted(value.items())) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class FieldError(NamedTuple):
    """One field-level validation error (apimachinery ``field.Error``)."""

    type: str
    field: str
    value: Any
    detail: str

    def body(self) -> str:
        """The message without the field path (``ErrorBody()``), used as a Status cause's message."""
        text = ERROR_TYPES[self.type]
        if self.type not in _VALUELESS:
            text = f"{text}: {_go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def message(self) -> str:
        return f"{self.field}: {self.body()}"


# Constructors named like apimachinery's field.Required(), field.Invalid() ...
def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, "", detail)


def invalid_value(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def not_supported(path: str, value: Any, supported: Sequence[str]) -> FieldError:
    """``Unsupported value``, listing ``supported`` in the given order (Kubernetes' order varies by field)."""
    detail = "supported values: " + ", ".join(go_quote(v) for v in supported) if supported else ""
    return FieldError("FieldValueNotSupported", path, value, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value, "")


def not_found_value(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", path, value, "")


def forbidden_field(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, "", detail)


def too_long(path: str, max_bytes: int) -> FieldError:
    return FieldError("FieldValueTooLong", path, "", f"must have at most {max_bytes} bytes")


def aggregate(errors: list[FieldError]) -> str:
    """``ErrorList.ToAggregate().Error()``: duplicates dropped, one message or ``[m1, m2]``."""
    messages = list(dict.fromkeys(e.message() for e in errors))
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


class APIError(Exception):
    """A failed API call, carrying the full ``Status`` object the server answers with."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.code: int = status["code"]

    @property
    def reason(self) -> str:
        return self.status.get("reason", "")


def _failure(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> APIError:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        status["details"] = details
    status["code"] = code
    return APIError(status)


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, resource: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(resource: str, name: str, group: str = "") -> APIError:
    return _failure(
        404, "NotFound", f"{_qualified(resource, group)} {go_quote(name)} not found", _details(name, resource, group)
    )


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    return _failure(
        409,
        "AlreadyExists",
        f"{_qualified(resource, group)} {go_quote(name)} already exists",
        _details(name, resource, group),
    )


OPTIMISTIC_LOCK_DETAIL = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(resource: str, name: str, detail: str = OPTIMISTIC_LOCK_DETAIL, group: str = "") -> APIError:
    message = f"Operation cannot be fulfilled on {_qualified(resource, group)} {go_quote(name)}: {detail}"
    return _failure(409, "Conflict", message, _details(name, resource, group))


def invalid(kind: str, name: str, errors: list[FieldError], group: str = "") -> APIError:
    qualified_kind = f"{kind}.{group}" if group else kind
    message = f"{qualified_kind} {go_quote(name)} is invalid"
    if errors:
        message += ": " + aggregate(errors)
    details: dict[str, Any] = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]
    return _failure(422, "Invalid", message, details)


def unauthorized(message: str = "Unauthorized") -> APIError:
    return _failure(401, "Unauthorized", message)


def forbidden(resource: str, name: str, reason: str, group: str = "") -> APIError:
    if not resource:
        message = f"forbidden: {reason}"
    elif not name:
        message = f"{_qualified(resource, group)} is forbidden: {reason}"
    else:
        message = f"{_qualified(resource, group)} {go_quote(name)} is forbidden: {reason}"
    return _failure(403, "Forbidden", message, _details(name, resource, group))


def bad_request(message: str) -> APIError:
    return _failure(400, "BadRequest", message)


ACCEPTED_MEDIA_TYPES = ("application/json", "application/yaml")


def unsupported_media_type(content_type: str, accepted: tuple[str, ...] = ACCEPTED_MEDIA_TYPES) -> APIError:
    """415 for a body in ``content_type``; the server's message names what it accepts, not what it got."""
    message = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
    return _failure(415, "UnsupportedMediaType", message)


def too_large(message: str) -> APIError:
    return _failure(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def gone(message: str) -> APIError:
    return _failure(410, "Expired", message)


def method_not_allowed(resource: str, action: str, group: str = "") -> APIError:
    message = f"{action} is not supported on resources of kind {go_quote(_qualified(resource, group))}"
    return _failure(405, "MethodNotAllowed", message, _details("", resource, group))


def internal(message: str) -> APIError:
    return _failure(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def status_success(details: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        status["details"] = details
    status["code"] = 200
    return status
