"""Changing a node's desired pods: write MetaManager first, then enqueue the task that reconciles Docker to it.

Used by ``edgeworkers pod apply/delete`` for node-local ("static") pods, which get their identity and
resourceVersion here. (The cloud bridge stores the cloud's objects as they are, with ``MetaStore.put``, and sends
the same messages through the same ``Send``.) The order matters: the task reads the store when it runs, so the
last write is always followed by a task that sees it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from edgeworkers import constants
from edgeworkers.k8s.pod import default_pod
from edgeworkers.k8s.status import invalid, not_found
from edgeworkers.k8s.validation import validate_pod
from edgeworkers.messages import Message
from edgeworkers.metamanager.store import POD, MetaStore

Send = Callable[[Message], None]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_resource_version(stored: dict[str, Any] | None) -> str:
    current = ((stored or {}).get("metadata") or {}).get("resourceVersion")
    try:
        return str(int(current) + 1)
    except (TypeError, ValueError):
        return "1"


def _prepared(pod_dict: dict[str, Any], stored: dict[str, Any] | None, source: str) -> dict[str, Any]:
    """The pod as stored: defaulted, identity kept across applies (a new uid would recreate every container);
    a pod still being deleted is applied anew, with a new uid, as after a delete in Kubernetes."""
    pod = default_pod(pod_dict)
    meta = pod.setdefault("metadata", {})
    meta.setdefault("namespace", "default")
    previous = {} if _being_deleted(stored) else (stored or {}).get("metadata") or {}
    meta["uid"] = meta.get("uid") or previous.get("uid") or str(uuid.uuid4())
    meta["creationTimestamp"] = meta.get("creationTimestamp") or previous.get("creationTimestamp") or _now()
    meta["resourceVersion"] = _next_resource_version(stored)
    meta.setdefault("annotations", {})[constants.ANNOTATION_SOURCE] = source
    return pod


def _being_deleted(pod: dict[str, Any] | None) -> bool:
    return bool(pod and pod["metadata"].get("deletionTimestamp"))


def apply_pod(store: MetaStore, send: Send, pod_dict: dict[str, Any], source: str = constants.SOURCE_FILE) -> Message:
    """Default, validate and store ``pod_dict`` as desired, then enqueue its add or update.

    Raises APIError (422 Invalid, worded as the Kubernetes API words it) for an invalid pod.
    """
    meta = pod_dict.get("metadata") or {}
    name = meta.get("name") or ""
    stored = store.get(POD, meta.get("namespace") or "default", name)
    pod = _prepared(pod_dict, stored, source)
    errors = validate_pod(pod)
    if errors:
        raise invalid("Pod", name, errors)
    store.put(POD, pod)
    operation = "update" if stored and not _being_deleted(stored) else "insert"
    message = Message.for_object(POD, pod, operation, source)
    send(message)
    return message


def delete_pod(
    store: MetaStore,
    send: Send,
    key: str,
    grace_period_s: int | None = None,
    source: str = constants.SOURCE_FILE,
) -> Message:
    """Mark pod ``key`` ("namespace/name") deleted, as the API server does, and enqueue its delete.

    The worker stops its containers with ``grace_period_s`` (default: the pod's terminationGracePeriodSeconds),
    then removes it from the desired state. Raises APIError (404 NotFound) when no such pod is desired.
    """
    namespace, name = key.split("/", 1)
    stored = store.get(POD, namespace, name)
    if stored is None:
        raise not_found("pods", name)
    pod = copy.deepcopy(stored)
    meta = pod["metadata"]
    if grace_period_s is None:
        grace_period_s = meta.get("deletionGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30))
    meta.setdefault("deletionTimestamp", _now())
    meta["deletionGracePeriodSeconds"] = min(grace_period_s, meta.get("deletionGracePeriodSeconds", grace_period_s))
    meta["resourceVersion"] = _next_resource_version(stored)
    store.put(POD, pod)
    message = Message.for_object(POD, pod, "delete", source)
    send(message)
    return message
