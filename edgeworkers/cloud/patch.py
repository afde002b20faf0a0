"""PATCH bodies: strategic merge, JSON merge (RFC 7386), JSON patch (RFC 6902), as apimachinery's `strategicpatch`
and `jsonpatch` apply them (server-side apply's field ownership is `managedfields.py`, as Kubernetes keeps its
`fieldmanager` apart).

Strategic merge patch follows apimachinery's `strategicpatch`: lists merge by the `patchMergeKey` that
kubernetes' core/v1 types declare (`MERGE_KEYS`), other lists are replaced, `null` deletes a key, and the
directives `$patch` (`replace`, `delete`, `merge`), `$setElementOrder/<list>`, `$retainKeys` and
`$deleteFromPrimitiveList/<list>` are honoured.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
PRIMITIVE = ""  # merge key of lists of scalars merged as sets (`patchStrategy:"merge"` without a key)

Path = tuple[str, ...]

# --- merge keys: kubernetes staging/src/k8s.io/api/core/v1/types.go `patchMergeKey` / `patchStrategy:"merge"` ---

_META: dict[Path, str] = {("metadata", "finalizers"): PRIMITIVE, ("metadata", "ownerReferences"): "uid"}
_CONTAINER: dict[Path, str] = {
    ("ports",): "containerPort",
    ("env",): "name",
    ("volumeMounts",): "mountPath",
    ("volumeDevices",): "devicePath",
}
_CONTAINER_STATUS: dict[Path, str] = {("volumeMounts",): "mountPath", ("allocatedResourcesStatus",): "name"}


def _nest(prefix: Path, keys: dict[Path, str]) -> dict[Path, str]:
    return {prefix + path: key for path, key in keys.items()}


_POD_SPEC: dict[Path, str] = {
    ("volumes",): "name",
    ("containers",): "name",
    ("initContainers",): "name",
    ("ephemeralContainers",): "name",
    ("imagePullSecrets",): "name",
    ("hostAliases",): "ip",
    ("topologySpreadConstraints",): "topologyKey",
    ("schedulingGates",): "name",
    ("resourceClaims",): "name",
    **_nest(("containers",), _CONTAINER),
    **_nest(("initContainers",), _CONTAINER),
    **_nest(("ephemeralContainers",), _CONTAINER),
}
_POD_STATUS: dict[Path, str] = {
    ("conditions",): "type",
    ("podIPs",): "ip",
    ("hostIPs",): "ip",
    ("resourceClaimStatuses",): "name",
    **_nest(("containerStatuses",), _CONTAINER_STATUS),
    **_nest(("initContainerStatuses",), _CONTAINER_STATUS),
    **_nest(("ephemeralContainerStatuses",), _CONTAINER_STATUS),
}
MERGE_KEYS: dict[str, dict[Path, str]] = {
    "Pod": {**_META, **_nest(("spec",), _POD_SPEC), **_nest(("status",), _POD_STATUS)},
    "Node": {
        **_META,
        ("spec", "podCIDRs"): PRIMITIVE,
        ("status", "conditions"): "type",
        ("status", "addresses"): "type",
    },
    "Namespace": {**_META, ("status", "conditions"): "type"},
    "Service": {**_META, ("spec", "ports"): "port", ("status", "conditions"): "type"},
}
# The workloads: a pod template (kubectl set image, rollout restart and undo patch it) and status conditions.
_WORKLOAD: dict[Path, str] = {**_META, **_nest(("spec", "template", "spec"), _POD_SPEC), ("status", "conditions"): "type"}
MERGE_KEYS.update(dict.fromkeys(("Deployment", "ReplicaSet", "DaemonSet", "ReplicationController", "Job"), _WORKLOAD))
# Lists merged by key whose items also may carry `$retainKeys` (`patchStrategy:"merge,retainKeys"`) need
# nothing special here: `$retainKeys` is honoured wherever it appears.


def merge_keys(kind: str) -> dict[Path, str]:
    """The merge keys of `kind`'s lists (path of field names, list indices left out)."""
    return MERGE_KEYS.get(kind, _META)


# --- strategic merge patch ---


def strategic_merge(original: dict, patch: dict, kind: str) -> dict:
    """Apply a strategic merge patch to a core/v1 object of `kind`; `original` is not modified."""
    if not isinstance(patch, dict):
        raise ValueError("a strategic merge patch must be a JSON object")
    return _merge_map(copy.deepcopy(original), patch, (), merge_keys(kind))


def _merge_map(original: dict, patch: dict, path: Path, keys: dict[Path, str]) -> dict:
    directive = patch.get(DIRECTIVE)
    if directive == "replace":
        return clean({k: v for k, v in patch.items() if k != DIRECTIVE})
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise ValueError(f"Unknown patch type: {directive} in map: {patch}")
    if RETAIN_KEYS in patch:
        retain = set(patch[RETAIN_KEYS] or [])
        original = {k: v for k, v in original.items() if k in retain}
    for name, values in patch.items():
        if name.startswith(DELETE_FROM_PRIMITIVE_LIST):
            field = name[len(DELETE_FROM_PRIMITIVE_LIST):]
            if isinstance(original.get(field), list):
                original[field] = [v for v in original[field] if v not in (values or [])]
    for name, value in patch.items():
        if name.startswith("$"):
            continue
        if value is None:
            original.pop(name, None)
            continue
        current = original.get(name)
        order = patch.get(SET_ELEMENT_ORDER + name)
        if isinstance(value, dict):
            original[name] = _merge_map(current if isinstance(current, dict) else {}, value, path + (name,), keys)
        elif isinstance(value, list):
            base = current if isinstance(current, list) else []
            original[name] = _merge_list(base, value, path + (name,), keys, order)
        else:
            original[name] = value
    for name, order in patch.items():
        field = name[len(SET_ELEMENT_ORDER):]
        if name.startswith(SET_ELEMENT_ORDER) and field not in patch and isinstance(original.get(field), list):
            original[field] = _order(original[field], order, keys.get(path + (field,)))
    return original


def _merge_list(original: list, patch: list, path: Path, keys: dict[Path, str], order: list | None) -> list:
    key = keys.get(path)
    if key is None:  # atomic list: replaced
        return [clean(v) for v in patch if not _is_directive_item(v)]
    if any(_is_directive_item(v) and v[DIRECTIVE] == "replace" for v in patch):
        return [clean(v) for v in patch if not _is_directive_item(v)]
    if key == PRIMITIVE:
        merged = list(original) + [v for i, v in enumerate(patch) if v not in original and v not in patch[:i]]
        return _order(merged, order, key)
    merged = list(original)
    for item in patch:
        if not isinstance(item, dict):
            raise ValueError(f"list {'.'.join(path)} merged by key {key!r} holds a non-object: {json.dumps(item)}")
        if key not in item:
            raise ValueError(f"map: {json.dumps(item, sort_keys=True)} does not contain declared merge key: {key}")
        directive = item.get(DIRECTIVE)
        at = next((i for i, v in enumerate(merged) if isinstance(v, dict) and v.get(key) == item[key]), None)
        if directive == "delete":
            merged = [v for v in merged if not (isinstance(v, dict) and v.get(key) == item[key])]
        elif at is None:
            merged.append(_merge_map({}, item, path, keys))
        else:
            merged[at] = _merge_map(merged[at], item, path, keys)
    return _order(merged, order, key)


def _order(merged: list, order: list | None, key: str | None) -> list:
    """Sort by `$setElementOrder`: listed items in its order, others keep their place relative to the server's."""
    if not order or key is None:
        return merged

    def ident(v: Any) -> Any:
        value = v.get(key) if key and isinstance(v, dict) else v
        return json.dumps(value, sort_keys=True)

    rank = {ident(v): i for i, v in enumerate(order)}
    server_index = {ident(v): i for i, v in enumerate(merged)}
    listed = sorted((v for v in merged if ident(v) in rank), key=lambda v: rank[ident(v)])
    others = [v for v in merged if ident(v) not in rank]
    out: list = []
    i = j = 0
    while i < len(listed) and j < len(others):
        if server_index[ident(listed[i])] > server_index[ident(others[j])]:
            out.append(others[j])
            j += 1
        else:
            out.append(listed[i])
            i += 1
    return out + listed[i:] + others[j:]


def _is_directive_item(value: Any) -> bool:
    return isinstance(value, dict) and DIRECTIVE in value and set(value) <= {DIRECTIVE}


def clean(value: Any) -> Any:
    """A patch value with its directives and nulls removed, for places it is taken as is."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value if not _is_directive_item(v)]
    return value


# --- JSON merge patch and JSON patch ---


def merge_patch(original: dict, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


class PatchTestFailed(ValueError):
    """A JSON patch's ``test`` operation did not hold: the API server answers 422."""


def json_patch(original: dict, ops: list) -> dict:
    """RFC 6902 JSON patch; a failing operation raises ValueError saying which and why (a failed ``test``:
    ``PatchTestFailed``)."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(original, ops, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchTestFailed(f"the test operation failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise ValueError(f"the JSON patch could not be applied: {exc}") from None
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"the JSON patch could not be applied: invalid operation ({exc})") from None
