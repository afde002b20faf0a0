"""OpenAPI v3 documents: just enough for kubectl's `--validate=strict` (its default) to go ahead.

One document per served group-version (``discovery.SERVED``), each operation one of its resources' verbs, so
OpenAPI lists what discovery lists and nothing else.

kubectl `apply`/`create` look up the PATCH operation of each kind (by `x-kubernetes-group-version-kind`)
and, when it lists a `fieldValidation` query parameter, send `fieldValidation=Strict` and leave the
validation to the server. Schemas are minimal on purpose.

The PATCH operations deliberately declare no `requestBody`: kubectl then computes client-side apply
patches from its compiled-in Go types (exact patch merge keys) instead of from these minimal schemas.
"""
from __future__ import annotations

import hashlib
import json
from functools import cache

from edgeworkers.cloud.discovery import (
    AUTHENTICATION_GROUP,
    COORDINATION_GROUP,
    METRICS_GROUP,
    SERVED,
    GroupVersion,
    Resource,
)

_SCHEMA_PACKAGE = {"": "io.k8s.api.core.v1", COORDINATION_GROUP: "io.k8s.api.coordination.v1",
                   AUTHENTICATION_GROUP: "io.k8s.api.authentication.v1",
                   METRICS_GROUP: "io.k8s.metrics.pkg.apis.metrics.v1beta1"}
_META = "io.k8s.apimachinery.pkg.apis.meta.v1"


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
    schema = f"{_SCHEMA_PACKAGE[served.group]}.{resource.kind}"
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
        "delete": _operation("delete", f"delete{op}", gvk, f"{_META}.Status", [*scope, _PATH_NAME, _DRY_RUN],
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
    name = f"{_SCHEMA_PACKAGE[served.group]}.{resource.kind}"
    gvk = [{"group": served.group, "version": served.version, "kind": resource.kind}]
    gvk_list = [{"group": served.group, "version": served.version, "kind": f"{resource.kind}List"}]
    typemeta = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}
    return {
        name: {
            "type": "object",
            "properties": {**typemeta, "metadata": {"allOf": [_ref(f"{_META}.ObjectMeta")]}},
            "x-kubernetes-group-version-kind": gvk,
        },
        f"{name}List": {
            "type": "object",
            "required": ["items"],
            "properties": {
                **typemeta,
                "items": {"type": "array", "items": {"allOf": [_ref(name)]}},
                "metadata": {"allOf": [_ref(f"{_META}.ListMeta")]},
            },
            "x-kubernetes-group-version-kind": gvk_list,
        },
    }


_META_SCHEMAS = {
    f"{_META}.ObjectMeta": {"type": "object"},
    f"{_META}.ListMeta": {"type": "object"},
    f"{_META}.Status": {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}],
    },
}


@cache
def _documents() -> dict[str, str]:
    """group-version path (`api/v1`) -> its document serialized, computed once."""
    docs = {}
    for served in SERVED:
        paths: dict[str, dict] = {}
        schemas = dict(_META_SCHEMAS)
        for resource in served.resources:
            paths.update(_resource_paths(served, resource))
            if "/" not in resource.name:
                schemas.update(_kind_schemas(served, resource))
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": schemas},
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
