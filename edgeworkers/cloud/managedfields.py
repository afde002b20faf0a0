"""Field ownership: server-side apply and every write's managedFields, kept apart from the patch formats
(`patch.py`) as Kubernetes keeps its `fieldmanager` apart from `strategicpatch`.

Simplified from Kubernetes' structured-merge-diff:
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

from edgeworkers.cloud.patch import PRIMITIVE, Path, clean, merge_keys, strategic_merge
from edgeworkers.k8s.timefmt import format_time

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
    if key == PRIMITIVE:
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
            if key != PRIMITIVE and isinstance(item, dict):
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
        obj = clean(body)
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
