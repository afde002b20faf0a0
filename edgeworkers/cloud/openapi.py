"""The OpenAPI documents: v3 (one per served group-version, ``discovery.SERVED``) and v2 (one for all, JSON or the
protobuf kubectl asks for), each operation one of its resources' verbs, so OpenAPI lists what discovery lists and
nothing else.

The schemas are Kubernetes' own, generated from the official client's models by ``ops/gen_openapi.py`` into
``openapi_definitions.json.gz``: `kubectl explain` describes every field, and kubectl's client-side validation of a
`kind: List` (it validates a List against `/openapi/v2`) knows each item's fields. Kinds the client has no model of
(metrics.k8s.io) get a minimal schema.

kubectl `apply`/`create` look up the PATCH operation of each kind (by `x-kubernetes-group-version-kind`)
and, when it lists a `fieldValidation` query parameter, send `fieldValidation=Strict` and leave the
validation to the server. Schemas are minimal on purpose.

The PATCH operations deliberately declare no `requestBody`: kubectl then computes client-side apply
patches from its compiled-in Go types (exact patch merge keys) instead of from these minimal schemas.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from edgeworkers.cloud.discovery import (
    AUTHENTICATION_GROUP,
    COORDINATION_GROUP,
    METRICS_GROUP,
    SERVED,
    GroupVersion,
    Resource,
)

DEFINITIONS_FILE = Path(__file__).with_name("openapi_definitions.json.gz")
SCHEMA_PACKAGE = {"": "io.k8s.api.core.v1", "apps": "io.k8s.api.apps.v1", "batch": "io.k8s.api.batch.v1",
                  "discovery.k8s.io": "io.k8s.api.discovery.v1", COORDINATION_GROUP: "io.k8s.api.coordination.v1",
                   AUTHENTICATION_GROUP: "io.k8s.api.authentication.v1",
                   METRICS_GROUP: "io.k8s.metrics.pkg.apis.metrics.v1beta1"}
META = "io.k8s.apimachinery.pkg.apis.meta.v1"


def _query(name: str, description: str, kind: str = "string") -> dict:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": True}}


_PATH_NAMESPACE = {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
_PATH_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _query("fieldManager", "A name associated with the actor or entity that is making these changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "Instructs the server on how to handle objects in the request containing unknown or duplicate fields: "
    "Ignore, Warn or Strict.",
)
_FORCE = _query("force", "Force is going to \"force\" Apply requests.", "boolean")
_WRITE_PARAMS = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
_LIST_PARAMS = [
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("resourceVersion", "Shows changes that occur after that particular version of a resource."),
    _query("watch", "Watch for changes to the described resources.", "boolean"),
    _query("limit", "The maximum number of responses to return for a list call.", "integer"),
]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _def(name: str) -> dict:
    return {"$ref": f"#/definitions/{name}"}


def _responses(schema: str, *codes: str) -> dict:
    content = {"application/json": {"schema": _ref(schema)}}
    return {code: {"description": "OK" if code == "200" else "Created", "content": content} for code in codes}


def _operation(action: str, op_id: str, gvk: dict, schema: str, params: list[dict], codes: tuple[str, ...]) -> dict:
    op: dict = {
        "operationId": op_id,
        "parameters": params,
        "responses": _responses(schema, *codes),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if action in ("post", "put"):
        op["requestBody"] = {"content": {"*/*": {"schema": _ref(schema)}}, "required": True}
    return op


def _resource_paths(served: GroupVersion, resource: Resource) -> dict[str, dict]:
    """The paths of one resource's verbs: list and create on its collection, get, update, patch, delete on an item
    (only the ``status`` subresource among subresources)."""
    prefix = "/" + served.path
    gvk = {"group": served.group, "version": served.version, "kind": resource.kind}
    schema = f"{SCHEMA_PACKAGE[served.group]}.{resource.kind}"
    base, _, sub = resource.name.partition("/")
    collection = f"{prefix}/namespaces/{{namespace}}/{base}" if resource.namespaced else f"{prefix}/{base}"
    scope = [_PATH_NAMESPACE] if resource.namespaced else []
    item = f"{collection}/{{name}}"
    op = f"{resource.kind}{'Namespaced' if resource.namespaced else ''}"
    patch_params = [*scope, _PATH_NAME, *_WRITE_PARAMS, _FORCE]
    verbs = set(resource.verbs)
    if sub and sub != "status":
        return {}
    suffix, item = ("Status", f"{item}/status") if sub else ("", item)
    item_ops = {
        "get": _operation("get", f"read{op}{suffix}", gvk, schema, [*scope, _PATH_NAME], ("200",)),
        "put": _operation("put", f"replace{op}{suffix}", gvk, schema, [*scope, _PATH_NAME, *_WRITE_PARAMS],
                          ("200", "201")),
        "patch": _operation("patch", f"patch{op}{suffix}", gvk, schema, patch_params, ("200", "201")),
        "delete": _operation("delete", f"delete{op}", gvk, f"{META}.Status", [*scope, _PATH_NAME, _DRY_RUN],
                             ("200",)),
    }
    wanted = {"get": "get", "put": "update", "patch": "patch", "delete": "delete"}
    paths = {item: {method: o for method, o in item_ops.items() if wanted[method] in verbs}}
    if sub:
        return paths
    list_schema = f"{schema}List"
    collection_ops = {}
    if "list" in verbs:
        collection_ops["get"] = _operation("list", f"list{op}", gvk, list_schema, [*scope, *_LIST_PARAMS], ("200",))
        if resource.namespaced:
            paths[f"{prefix}/{base}"] = {"get": _operation(
                "list", f"list{resource.kind}ForAllNamespaces", gvk, list_schema, _LIST_PARAMS, ("200",))}
    if "create" in verbs:
        collection_ops["post"] = _operation("post", f"create{op}", gvk, schema, [*scope, *_WRITE_PARAMS],
                                            ("200", "201"))
    paths[collection] = collection_ops
    return {path: ops for path, ops in paths.items() if ops}


def _kind_schemas(served: GroupVersion, resource: Resource) -> dict[str, dict]:
    """A minimal definition of a kind and its list, for a kind the generated definitions lack."""
    name = f"{SCHEMA_PACKAGE[served.group]}.{resource.kind}"
    gvk = [{"group": served.group, "version": served.version, "kind": resource.kind}]
    gvk_list = [{"group": served.group, "version": served.version, "kind": f"{resource.kind}List"}]
    typemeta = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}
    return {
        name: {
            "type": "object",
            "properties": {**typemeta, "metadata": _def(f"{META}.ObjectMeta")},
            "x-kubernetes-group-version-kind": gvk,
        },
        f"{name}List": {
            "type": "object",
            "required": ["items"],
            "properties": {**typemeta, "items": {"type": "array", "items": _def(name)},
                           "metadata": _def(f"{META}.ListMeta")},
            "x-kubernetes-group-version-kind": gvk_list,
        },
    }


_META_SCHEMAS = {
    f"{META}.ObjectMeta": {"type": "object"},
    f"{META}.ListMeta": {"type": "object"},
    f"{META}.Status": {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}],
    },
}


@cache
def definitions() -> dict[str, dict]:
    """Every served kind's OpenAPI v2 definition and the definitions they refer to, by name."""
    defs: dict[str, dict] = {**_META_SCHEMAS, **json.loads(gzip.decompress(DEFINITIONS_FILE.read_bytes()))}
    for served in SERVED:
        for resource in served.resources:
            if "/" not in resource.name:
                for name, schema in _kind_schemas(served, resource).items():
                    defs.setdefault(name, schema)
    return defs


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["$ref"].rsplit("/", 1)[1]} if isinstance(schema.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_refs(value) for value in schema))
    return set()


def _closure(names: set[str]) -> dict[str, dict]:
    """The definitions ``names`` need, themselves included."""
    defs, seen, todo = definitions(), set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        todo.extend(_refs(defs[name]))
    return {name: defs[name] for name in sorted(seen)}


def _v3_schema(schema: Any) -> Any:
    """A v2 schema as v3 writes it: references under components, a reference with a description in ``allOf``."""
    if isinstance(schema, list):
        return [_v3_schema(value) for value in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _v3_schema(value) for key, value in schema.items() if key != "$ref"}
    if isinstance(ref := schema.get("$ref"), str):
        target = _ref(ref.rsplit("/", 1)[1])
        if not out:
            return target
        out["allOf"] = [target]
    return out


@cache
def _documents() -> dict[str, str]:
    """group-version path (`api/v1`) -> its document serialized, computed once."""
    docs = {}
    for served in SERVED:
        paths: dict[str, dict] = {}
        for resource in served.resources:
            paths.update(_resource_paths(served, resource))
        schemas = _closure({f"{SCHEMA_PACKAGE[served.group]}.{r.kind}{suffix}" for r in served.resources
                            if "/" not in r.name for suffix in ("", "List")} | {f"{META}.Status"})
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": _v3_schema(schemas)},
        }
        docs[served.path] = json.dumps(doc, sort_keys=True)
    return docs


def openapi_v3_root() -> dict:
    """`GET /openapi/v3`: each group-version's document URL, with a content hash as the real server gives."""
    return {
        "paths": {
            gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={hashlib.sha512(text.encode()).hexdigest().upper()}"}
            for gv, text in _documents().items()
        }
    }


def openapi_v3_doc(group_version: str) -> dict | None:
    """`GET /openapi/v3/<group_version>` (e.g. `api/v1`), or None for one this server does not serve."""
    text = _documents().get(group_version.strip("/"))
    return json.loads(text) if text is not None else None


# -- OpenAPI v2 -------------------------------------------------------------------------------------------------

# What kubectl asks for (with "@", which Go's MIME parser refuses in a reply) and what kube-openapi answers.
V2_PROTOBUF_ASKED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _v2_schema(schema: dict) -> dict:
    return {"$ref": schema["$ref"].replace("#/components/schemas/", "#/definitions/")} if "$ref" in schema else schema


def _v2_operation(op: dict) -> dict:
    """A v3 operation of ``_resource_paths`` as v2 writes it: typed parameters, the body as a parameter, and each
    response's schema directly."""
    params = [{"name": p["name"], "in": p["in"], **({"required": True} if p.get("required") else {}),
               **({"description": p["description"]} if "description" in p else {}), **p["schema"]}
              for p in op["parameters"]]
    if "requestBody" in op:
        params.append({"name": "body", "in": "body", "required": True,
                       "schema": _v2_schema(op["requestBody"]["content"]["*/*"]["schema"])})
    responses = {code: {"description": r["description"],
                        "schema": _v2_schema(r["content"]["application/json"]["schema"])}
                 for code, r in op["responses"].items()}
    return {**{k: v for k, v in op.items() if k.startswith("x-") or k == "operationId"},
            "parameters": params, "responses": responses}


@cache
def openapi_v2() -> dict:
    """`GET /openapi/v2`: one Swagger 2.0 document of every served group-version."""
    paths: dict[str, dict] = {}
    for served in SERVED:
        for resource in served.resources:
            for path, ops in _resource_paths(served, resource).items():
                paths.setdefault(path, {}).update({method: _v2_operation(op) for method, op in ops.items()})
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": dict(sorted(paths.items())), "definitions": definitions()}


@cache
def openapi_v2_json() -> bytes:
    return json.dumps(openapi_v2(), sort_keys=True).encode()


# The protobuf kubectl asks for: gnostic's ``openapi.v2.Document`` (google/gnostic ``openapiv2/OpenAPIv2.proto``),
# written field by field; only the fields these documents use.

def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes(number: int, data: bytes) -> bytes:
    return _uvarint(number << 3 | 2) + _uvarint(len(data)) + data


def _str(number: int, text: str) -> bytes:
    return _bytes(number, text.encode()) if text else b""


def _bool(number: int, value: bool) -> bytes:
    return _uvarint(number << 3) + b"\x01" if value else b""


def _named(number: int, name: str, value: bytes) -> bytes:
    """One entry of gnostic's ordered maps (``NamedSchema``, ``NamedAny``, ...): name 1, value 2."""
    return _bytes(number, _str(1, name) + _bytes(2, value))


def _extensions(number: int, entries: dict) -> bytes:
    """``x-`` entries as ``NamedAny`` whose ``Any`` holds YAML (field 2), as kube-openapi reads them."""
    return b"".join(_named(number, key, _str(2, yaml.safe_dump(value, default_flow_style=False)))
                    for key, value in entries.items() if key.startswith("x-"))


def _schema_pb(schema: dict) -> bytes:
    out = _str(1, schema.get("$ref", "")) + _str(2, schema.get("format", "")) + _str(4, schema.get("description", ""))
    out += b"".join(_str(19, name) for name in schema.get("required", []))
    if isinstance(extra := schema.get("additionalProperties"), dict):
        out += _bytes(21, _bytes(1, _schema_pb(extra)))
    if "type" in schema:
        out += _bytes(22, _str(1, schema["type"]))
    if "items" in schema:
        out += _bytes(23, _bytes(1, _schema_pb(schema["items"])))
    out += b"".join(_bytes(24, _schema_pb(part)) for part in schema.get("allOf", []))
    if "properties" in schema:
        out += _bytes(25, b"".join(_named(1, name, _schema_pb(value)) for name, value in schema["properties"].items()))
    return out + _extensions(31, schema)


def _parameter_pb(param: dict) -> bytes:
    if param["in"] == "body":  # Parameter.body_parameter: BodyParameter
        body = _str(2, param["name"]) + _str(3, "body") + _bool(4, True) + _bytes(5, _schema_pb(param["schema"]))
        return _bytes(1, body)
    # Parameter.non_body_parameter: NonBodyParameter, query (3) or path (4) sub-schema; their type fields differ
    common = _bool(1, param.get("required", False)) + _str(2, param["in"]) + _str(3, param.get("description", ""))
    common += _str(4, param["name"])
    if param["in"] == "path":
        return _bytes(2, _bytes(4, common + _str(5, param["type"])))
    return _bytes(2, _bytes(3, common + _str(6, param["type"]) + _bool(20, param.get("uniqueItems", False))))


_METHOD_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}  # PathItem


def _operation_pb(op: dict) -> bytes:
    out = _str(5, op["operationId"])
    out += b"".join(_bytes(8, _bytes(1, _parameter_pb(p))) for p in op["parameters"])  # ParametersItem.parameter
    responses = b"".join(  # Responses.response_code: ResponseValue.response: Response{description, SchemaItem}
        _named(1, code, _bytes(1, _str(1, r["description"]) + _bytes(2, _bytes(1, _schema_pb(r["schema"])))))
        for code, r in op["responses"].items())
    return out + _bytes(9, responses) + _extensions(13, op)


@cache
def openapi_v2_protobuf() -> bytes:
    doc = openapi_v2()
    paths = b"".join(_named(2, path, b"".join(_bytes(_METHOD_FIELDS[m], _operation_pb(op)) for m, op in ops.items()))
                     for path, ops in doc["paths"].items())
    definitions_pb = b"".join(_named(1, name, _schema_pb(schema)) for name, schema in doc["definitions"].items())
    info = _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"])
    return _str(1, doc["swagger"]) + _bytes(2, info) + _bytes(8, paths) + _bytes(9, definitions_pb)
