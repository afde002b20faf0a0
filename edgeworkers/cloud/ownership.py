"""Deletion with a propagation policy, and garbage collection of dependents (objects whose
``metadata.ownerReferences`` name another), as kube-apiserver's registry and kube-controller-manager's garbage
collector do them:

- ``Background`` (the default): the object goes at once; then each dependent with no owner left goes too, and one
  with an owner left only loses its references to the deleted ones.
- ``Orphan``: the dependents lose their references to the object, then it goes.
- ``Foreground``: an object with dependents stays, marked deleting (``deletionTimestamp`` and the
  ``foregroundDeletion`` finalizer); the garbage collector (``garbagecollector.py``) deletes its dependents (those
  with dependents of their own in the foreground too) and deletes it once no dependent that blocks it
  (``blockOwnerDeletion: true``) is left. An object without dependents goes at once.
- An object with finalizers of its own stays, marked deleting, until an update removes the last (``finalized``).

A pod on a node is deleted gracefully, like any pod: it goes once its node confirms. Unlike kube's collector, the
background part runs at once, inside the write that deleted the owner, and once at start for owners already gone (as
with a store written before this existed). A Node's Lease goes this way. Owners of kinds not served here (a
ReplicaSet named in a manifest copied from a real cluster) cannot be looked up: like kube's collector when it finds
no such resource, their dependents are left alone.
"""
from __future__ import annotations

import functools

import orjson

from edgeworkers.cloud.resources import RESOURCES, Resource
from edgeworkers.cloud.store import Event, Store

PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"  # the garbage collector's finalizers

_BY_KIND: dict[tuple[str, str], Resource] = {(r.group, r.kind): r for r in RESOURCES.values()}


def _refs(obj: dict) -> list[dict]:
    return [ref for ref in obj["metadata"].get("ownerReferences") or [] if isinstance(ref, dict) and ref.get("uid")]


def _kind_of(ref: dict) -> Resource | None:
    """The served resource an ownerReference names (by group and kind, any version), if any."""
    return _BY_KIND.get((str(ref.get("apiVersion") or "").rpartition("/")[0], str(ref.get("kind") or "")))


def owner_uids(obj: dict, served_only: bool = False) -> set[str]:
    return {ref["uid"] for ref in _refs(obj) if not served_only or _kind_of(ref) is not None}


def deleting_dependents(obj: dict) -> bool:
    """Whether ``obj`` is being deleted in the foreground (waits for its dependents)."""
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and FOREGROUND in (meta.get("finalizers") or [])


def finalized(old: dict, new: dict) -> bool:
    """Whether an update of ``old`` to ``new`` removes the last finalizer of an object being deleted, which then goes
    (kube-apiserver's ``ShouldDeleteDuringUpdate``; a pod in its graceful period waits for its node still)."""
    meta = old["metadata"]
    return (bool(meta.get("deletionTimestamp")) and not meta.get("deletionGracePeriodSeconds")
            and not new["metadata"].get("finalizers"))


def missing_owners(store: Store) -> set[str]:
    """The uids that ownerReferences name but no stored object has."""
    referenced: set[str] = set()
    existing: set[str] = set()
    for resource in RESOURCES:
        for obj in store.list(resource):
            referenced |= owner_uids(obj, served_only=True)
            existing.add(obj["metadata"]["uid"])
    return referenced - existing


class _Graph:
    """Which objects name which as owner, read from the store (of one namespace, or all) when first asked; what one
    request or one sync decides from (kube's collector keeps such a graph up to date from its informers)."""

    def __init__(self, store: Store, namespace: str | None = None) -> None:
        self._store, self._namespace = store, namespace

    @functools.cached_property
    def dependents(self) -> dict[str, list[tuple[str, dict]]]:
        found: dict[str, list[tuple[str, dict]]] = {}
        for resource in RESOURCES.values():
            if self._namespace is None or resource.namespaced:
                for obj in self._store.list(resource.name, self._namespace):
                    for uid in owner_uids(obj):
                        found.setdefault(uid, []).append((resource.name, obj))
        return found

    def of(self, uid: str) -> list[tuple[str, dict]]:
        """``uid``'s dependents, as they are now (those gone or released since the scan left out)."""
        return [(resource, now) for resource, obj in self.dependents.get(uid, [])
                if (now := _fresh(self._store, resource, obj)) is not None and uid in owner_uids(now)]


def _fresh(store: Store, resource: str, obj: dict) -> dict | None:
    """``obj`` as stored now; None once it is gone (or replaced by a namesake)."""
    meta = obj["metadata"]
    now = store.find(resource, meta.get("namespace", ""), meta["name"])
    return now if now is not None and now["metadata"]["uid"] == meta["uid"] else None


def _scope(obj: dict) -> str | None:
    """Where an object's dependents may be: its namespace, or anywhere for a cluster-scoped owner."""
    return obj["metadata"].get("namespace") or None


def _without_owners(obj: dict, uids: set[str]) -> dict:
    new = orjson.loads(orjson.dumps(obj))
    kept = [ref for ref in new["metadata"]["ownerReferences"] if not (isinstance(ref, dict) and ref.get("uid") in uids)]
    if kept:
        new["metadata"]["ownerReferences"] = kept
    else:
        del new["metadata"]["ownerReferences"]
    return new


def _release(store: Store, resource: str, obj: dict, uids: set[str]) -> list[Event]:
    event = store.update(resource, _without_owners(obj, uids)) if owner_uids(obj) & uids else None
    return [event] if event is not None else []


def _classify(store: Store, obj: dict) -> tuple[set[str], set[str], set[str]]:
    """kube's ``classifyReferences``: the uids of ``obj``'s owners that are solid (there and not waiting; or not
    looked up: of a kind not served here, or namespaced for a cluster-scoped object), dangling (gone) and waiting
    (being deleted in the foreground)."""
    solid, dangling, waiting = set(), set(), set()
    namespace = obj["metadata"].get("namespace", "")
    for ref in _refs(obj):
        kind = _kind_of(ref)
        if kind is None or (kind.namespaced and not namespace):
            solid.add(ref["uid"])
            continue
        owner = store.find(kind.name, namespace if kind.namespaced else "", str(ref.get("name") or ""))
        if owner is None or owner["metadata"]["uid"] != ref["uid"]:
            dangling.add(ref["uid"])
        else:
            (waiting if deleting_dependents(owner) else solid).add(ref["uid"])
    return solid, dangling, waiting


def _attempt(store: Store, resource: str, obj: dict, graph: _Graph) -> tuple[list[Event], str | None]:
    """kube's ``attemptToDeleteItem`` for a dependent of a deleted owner or of one deleting in the foreground: the
    events, and its uid when it went at once."""
    meta = obj["metadata"]
    if meta.get("deletionTimestamp") or not _refs(obj):  # being deleted already: a one-way trip
        return [], None
    solid, dangling, waiting = _classify(store, obj)
    if solid:
        return _release(store, resource, obj, dangling | waiting), None
    finalizers, events = meta.get("finalizers") or [], []
    if waiting and (dependents := graph.of(meta["uid"])):
        policy = "Foreground"
        if any(deleting_dependents(dependent) for _resource, dependent in dependents):
            events, obj = _unblock(store, resource, obj)  # a cycle: its owners must not wait for it, nor it for them
    elif ORPHAN in finalizers:
        policy = "Orphan"
    else:
        policy = "Foreground" if FOREGROUND in finalizers else "Background"
    _answer, more, gone = _delete(store, resource, obj, None, policy, graph)
    return events + more, gone


def _unblock(store: Store, resource: str, obj: dict) -> tuple[list[Event], dict]:
    """``obj`` with ``blockOwnerDeletion: false`` in each of its ownerReferences (kube's cycle breaker)."""
    new = orjson.loads(orjson.dumps(obj))
    for ref in _refs(new):
        if ref.get("blockOwnerDeletion") is True:
            ref["blockOwnerDeletion"] = False
    event = store.update(resource, new)
    return ([event], event.object) if event is not None else ([], obj)


def _delete(store: Store, resource: str, obj: dict, grace: int | None, policy: str | None,
            graph: _Graph) -> tuple[dict, list[Event], str | None]:
    """One object's deletion, its dependents left to the caller: what the request answers, the events, and its uid
    when it went at once."""
    meta = obj["metadata"]
    namespace, name = meta.get("namespace", ""), meta["name"]
    if resource == "pods":
        spec = obj.get("spec") or {}
        grace = spec.get("terminationGracePeriodSeconds", 30) if grace is None else grace
        if grace > 0 and spec.get("nodeName"):
            event = store.begin_deletion(resource, namespace, name, grace)
            return (event.object, [event], None) if event is not None else (obj, [], None)
    finalizers = meta.get("finalizers") or []
    if policy is None:  # the request names none: the finalizers a previous delete set say, else Background
        policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
    kept = [f for f in finalizers if f not in (FOREGROUND, ORPHAN)]
    events: list[Event] = []
    if policy == "Orphan":
        for dep_resource, dependent in graph.of(meta["uid"]):
            events += _release(store, dep_resource, dependent, {meta["uid"]})
    elif policy == "Foreground" and graph.of(meta["uid"]):
        kept.append(FOREGROUND)
    if kept:
        event = store.mark_deleting(resource, namespace, name, kept)
        return (event.object, [*events, event], None) if event is not None else (obj, events, None)
    event = store.delete(resource, namespace, name)
    return event.object, [*events, event], meta["uid"]


def delete(store: Store, resource: str, obj: dict, grace: int | None, policy: str | None) -> tuple[dict, list[Event]]:
    """Delete ``obj`` as a DELETE request with ``grace`` and ``policy`` asks (None: it names none): what the request
    answers (the object deleted, or as it now is), and the events of every write, its dependents' included."""
    answer, events, gone = _delete(store, resource, obj, grace, policy, _Graph(store, _scope(obj)))
    return answer, (events + collect(store, {gone})) if gone else events


def delete_finalized(store: Store, resource: str, obj: dict) -> list[Event]:
    """Delete an object whose last finalizer is gone, and collect its dependents."""
    meta = obj["metadata"]
    return [store.delete(resource, meta.get("namespace", ""), meta["name"]), *collect(store, {meta["uid"]})]


def collect(store: Store, deleted: set[str]) -> list[Event]:
    """Delete or release the dependents of the objects whose uids are ``deleted``, and theirs in turn."""
    events: list[Event] = []
    while deleted:
        found = [(resource, obj) for resource in RESOURCES for obj in store.list(resource) if owner_uids(obj) & deleted]
        graph, deleted = _Graph(store), set()
        for resource, dependent in found:
            if (dependent := _fresh(store, resource, dependent)) is not None:
                more, gone = _attempt(store, resource, dependent, graph)
                events += more
                deleted |= {gone} if gone else set()
    return events


def delete_dependents(store: Store, resource: str, owner: dict) -> list[Event]:
    """kube's ``processDeletingDependentsItem`` for an owner being deleted in the foreground: each dependent deleted
    (or released, when it has an owner left), and, once none that blocks the owner is left, the owner's
    ``foregroundDeletion`` finalizer removed (the owner deleted with its last finalizer)."""
    uid = owner["metadata"]["uid"]
    graph = _Graph(store, _scope(owner))
    events: list[Event] = []
    gone: set[str] = set()
    for dep_resource, dependent in graph.of(uid):
        more, went = _attempt(store, dep_resource, dependent, graph)
        events += more
        gone |= {went} if went else set()
    events += collect(store, gone)
    if any(ref.get("uid") == uid and ref.get("blockOwnerDeletion") is True
           for _resource, dependent in graph.of(uid) for ref in _refs(dependent)):
        return events
    new = orjson.loads(orjson.dumps(owner))
    new["metadata"]["finalizers"] = [f for f in new["metadata"]["finalizers"] if f != FOREGROUND]
    if not new["metadata"]["finalizers"]:
        return events + delete_finalized(store, resource, owner)
    event = store.update(resource, new)
    return [*events, event] if event is not None else events
