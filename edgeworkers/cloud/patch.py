"""PATCH bodies and field ownership: strategic merge, JSON merge (RFC 7386), JSON patch (RFC 6902), server-side apply.

Strategic merge patch follows apimachinery's `strategicpatch`: lists merge by the `patchMergeKey` that
kubernetes' core/v1 types declare (`MERGE_KEYS`), other lists are replaced, `null` deletes a key, and the
directives `$patch` (`replace`, `delete`, `merge`), `$setElementOrder/<list>`, `$retainKeys` and
`$deleteFromPrimitiveList/<list>` are honoured.

Server-side apply, simplified from Kubernetes' structured-merge-diff:
- Field sets are kept in Kubernetes' `fieldsV1` form (`f:<field>`, `k:{"name":"bb"}` for list items merged by
  key, `v:<value>` for merged primitive lists). Lists without a merge key are atomic: one leaf. List items
  are keyed by the strategic merge key alone (Kubernetes keys container ports by port and protocol).
- The applied configuration is merged into the live object as a strategic merge patch (applied values win,
  keyed lists merge by their merge key, atomic lists are replaced).
- A conflict is a scalar or atomic-list leaf the applied configuration sets to a different value while
  another manager (any operation) owns it; without `force` it is refused, with `force` the other managers
  lose those fields. Equal values are shared. Type changes of a field and sub-field ownership are not checked.
- A field this manager applied before and omits now is removed unless another manager owns it (or, for a
  list item or map, anything below it); struct fields left empty by the removal are removed too.
- Ownership is not tracked for `apiVersion`, `kind`, server-set metadata (name, namespace, uid,
  resourceVersion, generation, timestamps, managedFields) and, outside the `status` subresource, `status`.
- Non-apply writes (`record_update`): the writer gains the leaves it changed, others lose them; entries are
  per (manager, operation, subresource), not per API version. As in Kubernetes, a write whose object carries
  managedFields sets them (this is how kubectl migrates client-side apply ownership after `--server-side`),
  `[{}]` resets them, and a write without them keeps the live object's.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from edgeworkers.k8s.timefmt import format_time

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
_PRIMITIVE = ""  # merge key of lists of scalars merged as sets (`patchStrategy:"merge"` without a key)

Path = tuple[str, ...]

# --- merge keys: kubernetes staging/src/k8s.io/api/core/v1/types.go `patchMergeKey` / `patchStrategy:"merge"` ---

_META: dict[Path, str] = {("metadata", "finalizers"): _PRIMITIVE, ("metadata", "ownerReferences"): "uid"}
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
        ("spec", "podCIDRs"): _PRIMITIVE,
        ("status", "conditions"): "type",
        ("status", "addresses"): "type",
    },
    "Namespace": {**_META, ("status", "conditions"): "type"},
}
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
        return _clean({k: v for k, v in patch.items() if k != DIRECTIVE})
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
        return [_clean(v) for v in patch if not _is_directive_item(v)]
    if any(_is_directive_item(v) and v[DIRECTIVE] == "replace" for v in patch):
        return [_clean(v) for v in patch if not _is_directive_item(v)]
    if key == _PRIMITIVE:
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


def _clean(value: Any) -> Any:
    """A patch value with its directives and nulls removed, for places it is taken as is."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value if not _is_directive_item(v)]
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


# --- field sets (managedFields fieldsV1) ---

_IGNORED_METADATA = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
})
# Map-typed fields: the map itself is owned (fieldsV1 `.`) besides its entries.
_MAP_FIELDS = frozenset({
    "labels", "annotations", "data", "binaryData", "stringData", "nodeSelector", "limits", "requests",
    "capacity", "allocatable",
})
_MISSING = object()


def _tracked(obj: dict, subresource: str) -> dict:
    """The part of `obj` whose fields are owned: status only through its subresource."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _IGNORED_METADATA}
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def field_set(obj: dict, kind: str, subresource: str = "") -> set[Path]:
    """Every owned path of `obj`: leaves, plus list items and maps themselves."""
    out: set[Path] = set()
    _walk(_tracked(obj, subresource), (), (), merge_keys(kind), out)
    return out


def _item_key(key: str, item: Any) -> str:
    if key == _PRIMITIVE:
        return "v:" + json.dumps(item, separators=(",", ":"))
    value = item.get(key) if isinstance(item, dict) else None
    return "k:" + json.dumps({key: value}, separators=(",", ":"))


def _walk(value: Any, schema: Path, fpath: Path, keys: dict[Path, str], out: set[Path]) -> None:
    if isinstance(value, dict):
        if fpath and (not value or schema[-1] in _MAP_FIELDS):
            out.add(fpath)
        for name, child in value.items():
            if child is not None:
                _walk(child, schema + (name,), fpath + ("f:" + name,), keys, out)
    elif isinstance(value, list) and schema in keys:
        key = keys[schema]
        for item in value:
            item_path = fpath + (_item_key(key, item),)
            out.add(item_path)
            if key != _PRIMITIVE and isinstance(item, dict):
                for name, child in item.items():
                    if child is not None:
                        _walk(child, schema + (name,), item_path + ("f:" + name,), keys, out)
    else:
        out.add(fpath)


def _get(obj: Any, path: Path) -> Any:
    """The value at a fieldsV1 path, or _MISSING."""
    for element in path:
        kind, _, spec = element.partition(":")
        if kind == "f":
            if not isinstance(obj, dict) or spec not in obj:
                return _MISSING
            obj = obj[spec]
        elif kind in ("k", "v"):
            if not isinstance(obj, list):
                return _MISSING
            wanted = json.loads(spec)
            if kind == "v":
                obj = wanted if wanted in obj else _MISSING
            else:
                obj = next((i for i in obj if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())),
                           _MISSING)
            if obj is _MISSING:
                return _MISSING
        else:
            return _MISSING
    return obj


def _remove(obj: dict, path: Path) -> None:
    parent = _get(obj, path[:-1])
    kind, _, spec = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(spec, None)
    elif kind in ("k", "v") and isinstance(parent, list):
        target = _get(obj, path)
        parent[:] = [i for i in parent if i is not target and not (kind == "v" and i == target)]


def to_fields_v1(paths: set[Path]) -> dict:
    """A field set as the nested `fieldsV1` JSON (`.` marks a node owned itself and having children)."""
    root: dict = {}
    for path in sorted(paths, key=len):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict) -> dict:
    return {k: _sorted(node[k]) for k in sorted(node)}


def from_fields_v1(fields: dict, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for element, child in (fields or {}).items():
        if element == ".":
            out.add(prefix)
        elif child:
            out |= from_fields_v1(child, prefix + (element,))
        else:
            out.add(prefix + (element,))
    return out


def path_string(path: Path) -> str:
    """A fieldsV1 path as Kubernetes prints it: `.spec.containers[name="bb"].image`."""
    parts = []
    for element in path:
        kind, _, spec = element.partition(":")
        if kind == "f":
            parts.append("." + spec)
        elif kind == "k":
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(spec).items()) + "]")
        else:
            parts.append(f"[={spec}]")
    return "".join(parts)


# --- managedFields entries ---


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    fields: set[Path]
    subresource: str = ""

    @classmethod
    def parse(cls, raw: dict) -> _Entry:
        return cls(raw.get("manager", ""), raw.get("operation", "Update"), raw.get("apiVersion", ""),
                   raw.get("time", ""), from_fields_v1(raw.get("fieldsV1") or {}), raw.get("subresource", ""))

    def identity(self) -> tuple[str, str, str]:
        return self.manager, self.operation, self.subresource

    def label(self) -> str:
        """How a conflict message names the manager (apiserver's printManager)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        return f"{text} using {self.api_version}" if self.operation == "Update" else text

    def to_json(self) -> dict:
        out = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
               "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.fields)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _entries(obj: dict | None) -> list[_Entry]:
    return [_Entry.parse(e) for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []]


def _with_entries(obj: dict, entries: list[_Entry]) -> dict:
    meta = obj.setdefault("metadata", {})
    meta["managedFields"] = [e.to_json() for e in entries if e.fields]
    if not meta["managedFields"]:
        del meta["managedFields"]
    return obj


def _upsert(entries: list[_Entry], entry: _Entry) -> list[_Entry]:
    for i, existing in enumerate(entries):
        if existing.identity() == entry.identity():
            return [*entries[:i], entry, *entries[i + 1:]]
    return [*entries, entry]


def _leaves(paths: set[Path]) -> set[Path]:
    prefixes = {p[:i] for p in paths for i in range(len(p))}
    return {p for p in paths if p not in prefixes}


class ConflictError(Exception):
    """Server-side apply would change fields other managers own; the server answers 409 with `message`."""

    def __init__(self, fields: list[str], manager: str, conflicts: list[tuple[str, str]] | None = None) -> None:
        self.fields = fields
        self.manager = manager
        self.conflicts = conflicts or [(manager, f) for f in fields]  # (manager label, field path)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if len(self.conflicts) == 1:
            label, field = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {label}: {field}"
        lines = []
        for label in sorted({label for label, _ in self.conflicts}):
            lines.append(f"conflicts with {label}:")
            lines.extend(f"- {field}" for other, field in self.conflicts if other == label)
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict]:
        """`details.causes` of the 409 Status."""
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {label}", "field": field}
                for label, field in self.conflicts]


def _prune_empty(obj: dict, path: Path, owned: set[Path]) -> None:
    """Remove struct fields that the removal of `path` left empty, unless someone owns them."""
    parent = path[:-1]
    while parent and parent[-1].startswith("f:") and parent not in owned:
        value = _get(obj, parent)
        if value != {}:
            return
        _remove(obj, parent)
        parent = parent[:-1]


def server_side_apply(live: dict | None, applied: dict, manager: str, force: bool, now: str | None = None) -> dict:
    """Merge an applied configuration (`application/apply-patch+yaml`) into `live` (None: create).

    Raises ConflictError when, without `force`, the configuration changes fields other managers own.
    `now` (RFC 3339) stamps the manager's entry; the current time when not given.
    """
    now = now or format_time()
    kind = applied.get("kind") or (live or {}).get("kind", "")
    api_version = applied.get("apiVersion") or (live or {}).get("apiVersion", "v1")
    body = {k: v for k, v in applied.items() if k != "status"}
    body["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items() if k != "managedFields"}
    new_fields = field_set(body, kind)
    if live is None:
        obj = _clean(body)
        return _with_entries(obj, [_Entry(manager, "Apply", api_version, now, new_fields)])

    entries = _entries(live)
    mine = next((e for e in entries if e.identity() == (manager, "Apply", "")), None)
    others = [e for e in entries if e is not mine]
    conflicts: list[tuple[_Entry, Path]] = []
    for path in sorted(_leaves(new_fields)):
        current, wanted = _get(live, path), _get(body, path)
        if current is _MISSING or current == wanted or isinstance(wanted, dict):  # a map's entries conflict, not it
            continue
        conflicts.extend((e, path) for e in others if path in e.fields)
    if conflicts and not force:
        fields = [path_string(p) for _, p in conflicts]
        raise ConflictError(fields, conflicts[0][0].manager, [(e.label(), path_string(p)) for e, p in conflicts])
    for entry, path in conflicts:
        entry.fields.discard(path)

    obj = strategic_merge(live, body, kind)
    kept = set().union(new_fields, *(e.fields for e in others))
    removed = {p for p in (mine.fields if mine else set()) - new_fields
               if not any(k[:len(p)] == p for k in kept)}
    for path in sorted(removed, key=len, reverse=True):
        if not any(path[:i] in removed for i in range(len(path))) and _get(obj, path) is not _MISSING:
            _remove(obj, path)
            _prune_empty(obj, path, kept)
    entry = _Entry(manager, "Apply", api_version, now, new_fields)
    result = _upsert(entries, entry) if mine else [*entries, entry]
    return _with_entries(obj, result)


def record_update(
    live_before: dict | None,
    obj_after: dict,
    manager: str,
    operation: str = "Update",
    now: str | None = None,
    subresource: str = "",
) -> dict:
    """`obj_after` with managedFields updated for a non-apply write (create, update, patch) by `manager`.

    The writer owns the leaves it changed (all of them on create); other managers lose those and any field
    that no longer exists. `now` is the RFC 3339 time of the write (the current time when not given);
    `subresource` is "status" for writes through `/status`, which own only status fields.
    """
    now = now or format_time()
    kind = obj_after.get("kind") or (live_before or {}).get("kind", "")
    after_fields = field_set(obj_after, kind, subresource)
    if live_before is None:
        changed = after_fields
    else:
        before_fields = field_set(live_before, kind, subresource)
        changed = after_fields - before_fields
        changed |= {p for p in _leaves(after_fields) & before_fields if _get(live_before, p) != _get(obj_after, p)}
    entries = _requested_entries(obj_after, live_before) if not subresource else _entries(live_before)
    for entry in entries:
        entry.fields = (entry.fields - changed) & (after_fields | _out_of_scope(entry, subresource))
    identity = (manager, operation, subresource)
    mine = next((e for e in entries if e.identity() == identity), None)
    fields = ((mine.fields if mine else set()) | changed) & after_fields
    entry = _Entry(manager, operation, obj_after.get("apiVersion", "v1"), now, fields, subresource)
    obj = copy.deepcopy(obj_after)
    return _with_entries(obj, _upsert(entries, entry))


def _requested_entries(obj_after: dict, live_before: dict | None) -> list[_Entry]:
    """The entries a write starts from, as the apiserver decides: the request's own managedFields when it
    carries any (kubectl's client-side to server-side apply migration replaces them by a JSON patch),
    none for the reset value `[{}]`, else the live object's."""
    requested = (obj_after.get("metadata") or {}).get("managedFields")
    if requested == [{}]:
        return []
    if requested and isinstance(requested, list) and all(isinstance(e, dict) for e in requested):
        return _entries(obj_after)
    return _entries(live_before)


def _out_of_scope(entry: _Entry, subresource: str) -> set[Path]:
    """Fields of `entry` outside what a write through `subresource` can touch, which it keeps."""
    if subresource == "status":
        return {p for p in entry.fields if p[:1] != ("f:status",)}
    return {p for p in entry.fields if p[:1] == ("f:status",)}
