"""Bodies on the wire: reading objects and patches by Content-Type, writing JSON replies."""
from __future__ import annotations

from collections.abc import Iterable

import orjson
import yaml
from aiohttp import web

from edgeworkers.cloud import protobuf
from edgeworkers.k8s import status

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE, STRATEGIC, APPLY)


def json_response(obj: object, code: int = 200, warnings: Iterable[str] = ()) -> web.Response:
    response = web.Response(body=orjson.dumps(obj), status=code, content_type=JSON)
    for warning in warnings:
        response.headers.add("Warning", f'299 - "{_quote(warning)}"')
    return response


def wants_table(request: web.Request) -> bool:
    """True when the Accept header asks for the ``meta.k8s.io`` Table form first (as ``kubectl get`` does)."""
    first = request.headers.get("Accept", "").split(",")[0]
    return "as=Table" in first


def media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", JSON).split(";")[0].strip().lower()


async def read_object(request: web.Request) -> dict:
    """The request's object: JSON, YAML, or Kubernetes protobuf (ConfigMap/Secret, as kubectl create sends)."""
    body = await request.read()
    kind = media_type(request)
    if kind == PROTOBUF:
        try:
            obj = protobuf.decode_object(body)
        except ValueError as exc:
            raise status.bad_request(f"unable to decode protobuf body: {exc}") from exc
    elif kind in (JSON, "", "*/*"):
        obj = decode_json(body)
    elif kind == YAML:
        obj = decode_yaml(body)
    else:
        raise status.unsupported_media_type(kind, (JSON, YAML, PROTOBUF))
    if not isinstance(obj, dict):
        raise status.bad_request("the body of the request is not a JSON object")
    return obj


def decode_json(body: bytes) -> object:
    try:
        return orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise status.bad_request(f"error decoding JSON body: {exc}") from exc


def decode_yaml(body: bytes) -> object:
    """YAML as JSON: keys become strings and timestamps RFC 3339 strings, as the API server's YAML-to-JSON does."""
    try:
        return orjson.loads(orjson.dumps(yaml.safe_load(body) or {}, option=orjson.OPT_NON_STR_KEYS))
    except yaml.YAMLError as exc:
        raise status.bad_request(f"error decoding YAML body: {exc}") from exc
    except TypeError as exc:  # a YAML value JSON has no form for (a !!set, a !!binary ...)
        raise status.bad_request(f"error converting YAML to JSON: {exc}") from exc


def query_flag(request: web.Request, key: str) -> bool:
    return request.query.get(key, "").lower() in ("true", "1")


def query_int(request: web.Request, key: str) -> int | None:
    value = request.query.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise status.bad_request(f"invalid value for {key}: {value!r}") from None


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
