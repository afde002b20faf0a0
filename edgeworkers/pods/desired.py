"""Changing a node's desired pods: write MetaManager first, then enqueue the task that reconciles Docker to it.

Used by ``edgeworkers pod apply/delete`` for node-local ("static") pods, which get their identity and
resourceVersion here, and their name suffixed with the node's (``<name>-<nodeName>``, as kubelet names static pods,
so a static pod and a cloud pod of the same manifest never share a name, and the mirror pod at the cloud carries the
same name). The cloud bridge stores the cloud's objects as they are and sends the same messages through the same
``Send``. The order matters: the task reads the store when it runs, so the last write is always followed by a task
that sees it. Every write is a compare-and-set on the version read: of two concurrent applies or deletes of one pod,
one fails with 409 Conflict, as against the API server.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from edgeworkers import constants
from edgeworkers.k8s.decoding import type_error
from edgeworkers.k8s.pod import Pod, default_pod
from edgeworkers.k8s.status import bad_request, conflict, invalid, invalid_value, not_found
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.k8s.validation import validate_pod
from edgeworkers.messages import Message, Send
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.deletion import being_deleted, delete_pod, next_resource_version, put_over
from edgeworkers.volumes.errors import UnsafePath
from edgeworkers.volumes.paths import safe_component

__all__ = ["Send", "apply_pod", "decode_pod", "delete_pod", "find_static_pod", "resync_all", "static_pod_name"]


def static_pod_name(name: str, node_name: str) -> str:
    """A static pod's name on the node and at the cloud: kubelet's ``<name>-<nodeName>``."""
    return f"{name}-{node_name}"


def _prepared(
    pod_dict: dict[str, Any], stored: dict[str, Any] | None, source: str, tombstone: int | None
) -> dict[str, Any]:
    """The pod as stored: defaulted, identity kept across applies (a new uid would recreate every container);
    a pod still being deleted is applied anew, with a new uid, as after a delete in Kubernetes."""
    pod = default_pod(pod_dict)
    meta = pod.setdefault("metadata", {})
    meta.setdefault("namespace", "default")
    previous = {} if being_deleted(stored) else (stored or {}).get("metadata") or {}
    meta["uid"] = meta.get("uid") or previous.get("uid") or str(uuid.uuid4())
    meta["creationTimestamp"] = meta.get("creationTimestamp") or previous.get("creationTimestamp") or format_time()
    meta["resourceVersion"] = next_resource_version(stored, tombstone)
    meta.setdefault("annotations", {})[constants.ANNOTATION_SOURCE] = source
    return pod


def _field_path(location: tuple[int | str, ...]) -> str:
    """pydantic's error location as a Kubernetes field path: ``spec.containers[0].command[1]``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")


def _decoded(pod_dict: dict[str, Any]) -> Pod:
    """``pod_dict`` as a Pod; APIError 400 when a field has the wrong type (a number where a string belongs),
    worded as the API server's decoder words it (``k8s.decoding``), so `kubectl apply` and this agree."""
    problem = type_error("Pod", pod_dict)
    try:
        pod = Pod.from_dict(pod_dict)
    except ValidationError as exc:
        problem = problem or "; ".join(f"{_field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
    if problem:
        raise bad_request(f'Pod in version "v1" cannot be handled as a Pod: {problem}')
    return pod


def decode_pod(pod_dict: dict[str, Any]) -> Pod:
    """A stored or applied pod, checked as the API server checks it: APIError 400 when it does not decode,
    422 Invalid (worded as Kubernetes words it) when it breaks a validation rule."""
    pod = _decoded(pod_dict)
    errors = validate_pod(pod_dict)
    if errors:
        raise invalid("Pod", pod.metadata.name or "", errors)
    return pod


def apply_pod(store: MetaStore, send: Send, pod_dict: dict[str, Any], source: str = constants.SOURCE_FILE) -> Message:
    """Default, validate and store ``pod_dict`` as a static pod, then enqueue its add or update (the CLI names it
    with ``static_pod_name`` first).

    Raises APIError: 400 for a field of the wrong type, 422 Invalid worded as the Kubernetes API words it, 409 when
    another apply or delete of the pod came first, or when a pod of that name came from the cloud.
    """
    meta = _decoded(pod_dict).metadata
    namespace, name = meta.namespace or "default", meta.name or ""
    stored = store.get(POD, namespace, name)
    if stored is not None and stored["metadata"].get("annotations", {}).get(constants.ANNOTATION_SOURCE) != source:
        raise conflict("pods", name, "a pod of that name came from the cloud")
    pod = _prepared(pod_dict, stored, source, store.tombstone(POD, namespace, name))
    decode_pod(pod)
    try:  # the uid names the pod's directories on this node: refused here, before anything is stored
        safe_component(pod["metadata"]["uid"], "metadata.uid")
    except UnsafePath as exc:
        raise invalid("Pod", name, [invalid_value("metadata.uid", pod["metadata"]["uid"], str(exc))]) from None
    put_over(store, pod, stored)
    operation = "update" if stored and not being_deleted(stored) else "insert"
    message = Message.for_object(POD, pod, operation, source)
    send(message)
    return message


def find_static_pod(store: MetaStore, namespace: str, name: str, node_name: str) -> str:
    """The key of the static pod named ``name`` (as listed) or ``<name>-<node_name>`` (as in its manifest)."""
    for candidate in (name, static_pod_name(name, node_name)):
        if store.get(POD, namespace, candidate) is not None:
            return f"{namespace}/{candidate}"
    raise not_found("pods", name)


def resync_all(store: MetaStore, send: Send, source: str = "edged") -> list[str]:
    """Enqueue a sync of every desired pod (a delete for one being deleted); return their keys.

    Run when the workers start: after an agent restart or an edge reboot, Docker may no longer hold what the
    desired state says (containers stopped by the reboot, a task lost with a crashed worker), and no cloud
    message may come to say so. Each task reconciles to the stored desired state, so this is always safe.
    """
    keys = []
    for pod in store.each(POD):
        message = Message.for_object(POD, pod, "delete" if being_deleted(pod) else "update", source)
        send(message)
        keys.append(message.key)
    return keys
