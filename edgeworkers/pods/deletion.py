"""Marking a desired pod deleted, as the API server does: a ``deletionTimestamp`` and a grace period, then its delete
task. The worker stops the containers and removes the pod from MetaManager.

Kept apart from ``desired`` (applying and validating pods) so that the bridge, which marks pods deleted at the cloud,
does not load the pod models and validation (about 8 MiB of the bridge's memory).
"""
from __future__ import annotations

import copy
from typing import Any

from edgeworkers import constants
from edgeworkers.k8s.status import conflict, not_found
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.messages import Message, Send
from edgeworkers.metamanager.store import POD, Conflict, MetaStore, Put


def next_resource_version(stored: dict[str, Any] | None, tombstone: int | None = None) -> str:
    """One past the stored version and the last deleted one (a tombstone refuses anything not newer)."""
    current = ((stored or {}).get("metadata") or {}).get("resourceVersion")
    try:
        number = int(current)
    except (TypeError, ValueError):
        number = 0
    return str(max(number, tombstone or 0) + 1)


def stored_version(stored: dict[str, Any] | None) -> str | None:
    return stored["metadata"].get("resourceVersion") if stored else None


def put_over(store: MetaStore, pod: dict[str, Any], stored: dict[str, Any] | None) -> None:
    """Compare-and-set ``pod`` over the ``stored`` copy read before; 409 Conflict when another writer came first."""
    name = pod["metadata"]["name"]
    try:
        outcome = store.put(POD, pod, expect=stored_version(stored))
    except Conflict:
        raise conflict("pods", name) from None
    if outcome is not Put.STORED:
        raise conflict("pods", name)


def being_deleted(pod: dict[str, Any] | None) -> bool:
    return bool(pod and pod["metadata"].get("deletionTimestamp"))


def delete_pod(
    store: MetaStore,
    send: Send,
    key: str,
    grace_period_s: int | None = None,
    source: str = constants.SOURCE_FILE,
    resource_version: str | None = None,
) -> Message:
    """Mark pod ``key`` ("namespace/name") deleted, as the API server does, and enqueue its delete.

    The worker stops its containers with ``grace_period_s`` (default: the pod's terminationGracePeriodSeconds),
    then removes it from the desired state. ``resource_version``: the version of the marked copy (the cloud's
    deletion, for a pod deleted at the cloud); by default one past the stored one. Raises APIError 404 when no such
    pod is desired, 409 when another writer changed it meanwhile.
    """
    namespace, name = key.split("/", 1)
    stored = store.get(POD, namespace, name)
    if stored is None:
        raise not_found("pods", name)
    pod = copy.deepcopy(stored)
    meta = pod["metadata"]
    if grace_period_s is None:
        grace_period_s = meta.get("deletionGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30))
    meta.setdefault("deletionTimestamp", format_time())
    meta["deletionGracePeriodSeconds"] = min(grace_period_s, meta.get("deletionGracePeriodSeconds", grace_period_s))
    meta["resourceVersion"] = resource_version or next_resource_version(stored)
    put_over(store, pod, stored)
    message = Message.for_object(POD, pod, "delete", source)
    send(message)
    return message
