"""Garbage collection of dependents: objects whose ``metadata.ownerReferences`` name a deleted object.

With the ``Background`` or ``Foreground`` propagation policy (``Background`` is the default here), a
dependent goes once none of its owners exists any more, and one with an owner left only loses its
references to the deleted ones, as the API server's garbage collector does; with ``Orphan`` every dependent
just loses them. A pod on a node is deleted gracefully, like any pod. Unlike the real collector, this runs
at once, inside the request that deleted the owner, and once at start for owners already gone (as with
a store written before this existed). The node's Lease, owned by its Node, goes this way.
"""
from __future__ import annotations

import orjson

from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.cloud.store import Event, Store

PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")


# Owners of other kinds (a ReplicaSet named in a manifest copied from a real cluster) cannot be looked up
# here: like the API server's collector when it finds no such resource, their dependents are left alone.
_SERVED = frozenset((r.api_version, r.kind) for r in RESOURCES.values())


def _owner_uids(obj: dict, served_only: bool = False) -> set[str]:
    refs = obj["metadata"].get("ownerReferences") or []
    return {ref.get("uid") for ref in refs if isinstance(ref, dict) and ref.get("uid")
            and (not served_only or (ref.get("apiVersion"), ref.get("kind")) in _SERVED)}


def _without_owners(obj: dict, uids: set[str]) -> dict:
    new = orjson.loads(orjson.dumps(obj))
    kept = [ref for ref in new["metadata"]["ownerReferences"] if not (isinstance(ref, dict) and ref.get("uid") in uids)]
    if kept:
        new["metadata"]["ownerReferences"] = kept
    else:
        del new["metadata"]["ownerReferences"]
    return new


def missing_owners(store: Store) -> set[str]:
    """The uids that ownerReferences name but no stored object has."""
    referenced: set[str] = set()
    existing: set[str] = set()
    for resource in RESOURCES:
        for obj in store.list(resource):
            referenced |= _owner_uids(obj, served_only=True)
            existing.add(obj["metadata"]["uid"])
    return referenced - existing


def _grace(pod: dict) -> int:
    return pod["spec"].get("terminationGracePeriodSeconds", 30)


def collect(store: Store, deleted: set[str], policy: str) -> list[Event]:
    """Delete or release the dependents of the objects whose uids are ``deleted``, and theirs in turn."""
    events: list[Event] = []
    while deleted:
        found = [(resource, obj) for resource in RESOURCES for obj in store.list(resource)
                 if _owner_uids(obj) & deleted]
        if not found:
            break
        alive = {obj["metadata"]["uid"] for resource in RESOURCES for obj in store.list(resource)} - deleted
        next_round: set[str] = set()
        for resource, obj in found:
            meta = obj["metadata"]
            owners = _owner_uids(obj)
            unknown = owners - _owner_uids(obj, served_only=True)
            if policy == "Orphan" or owners & alive or unknown:
                if (event := store.update(resource, _without_owners(obj, owners - alive - unknown))) is not None:
                    events.append(event)
            elif resource == "pods" and obj["spec"].get("nodeName") and _grace(obj) > 0:
                if (event := store.begin_deletion(resource, meta["namespace"], meta["name"], _grace(obj))):
                    events.append(event)
            else:
                events.append(store.delete(resource, meta.get("namespace", ""), meta["name"]))
                next_round.add(meta["uid"])
        deleted, policy = next_round, "Background"
    return events
