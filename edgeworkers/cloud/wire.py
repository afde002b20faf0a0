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
    """The request's object: JSON, YAML, or Kubernetes protobuf (what kubectl's typed clients send)."""
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


# How deeply a body may nest: Kubernetes objects stay far below this; the recursive merges and validation stay
# far from Python's recursion limit.
MAX_DEPTH = 100
# Beyond the nodes a YAML body could hold written out (one per byte), this many more may come from alias expansion:
# a "billion laughs" body is refused after this much work instead of growing the process.
YAML_ALIAS_ALLOWANCE = 10_000


def check_depth(value: object, limit: int = MAX_DEPTH) -> None:
    """400 when ``value`` nests deeper than ``limit`` (iterative: a deep body cannot exhaust the stack here)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            raise status.bad_request(f"the body nests deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def decode_json(body: bytes) -> object:
    try:
        value = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise status.bad_request(f"error decoding JSON body: {exc}") from exc
    check_depth(value)
    return value


def decode_yaml(body: bytes) -> object:
    """YAML as JSON: keys become strings and timestamps RFC 3339 strings, as the API server's YAML-to-JSON does.

    Aliases are expanded only within a budget (``YAML_ALIAS_ALLOWANCE``), and nesting is bounded (``MAX_DEPTH``)."""
    try:
        loader = yaml.SafeLoader(body)
    except yaml.YAMLError as exc:  # not text (the reader checks the encoding at once)
        raise status.bad_request(f"error decoding YAML body: {exc}") from exc
    try:
        node = loader.get_single_node()
        _check_yaml_expansion(node, len(body) + YAML_ALIAS_ALLOWANCE)
        value = loader.construct_document(node) if node is not None else None
        return orjson.loads(orjson.dumps(value or {}, option=orjson.OPT_NON_STR_KEYS))
    except yaml.YAMLError as exc:
        raise status.bad_request(f"error decoding YAML body: {exc}") from exc
    except RecursionError:
        raise status.bad_request(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except (TypeError, orjson.JSONEncodeError) as exc:  # a YAML value JSON has no form for (a !!set, a !!binary ...)
        raise status.bad_request(f"error converting YAML to JSON: {exc}") from exc
    finally:
        loader.dispose()


def _check_yaml_expansion(node: yaml.Node | None, budget: int) -> None:
    """400 when the document, its aliases expanded, has more than ``budget`` nodes or nests too deep."""
    stack: list[tuple[yaml.Node, int]] = [(node, 1)] if node is not None else []
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > budget:
            raise status.bad_request("error decoding YAML body: the document expands too far (excessive aliasing)")
        if isinstance(item, yaml.MappingNode | yaml.SequenceNode):
            if depth > MAX_DEPTH:
                raise status.bad_request(f"the body nests deeper than {MAX_DEPTH} levels")
            children = [n for pair in item.value for n in pair] if isinstance(item, yaml.MappingNode) else item.value
            stack.extend((child, depth + 1) for child in children)


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
    """A warning's text inside the header's quotes: backslash and quote escaped, control characters (which a header
    must not hold: a field named with one would otherwise break the reply) as ``\\uXXXX``."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 else c for c in text)
