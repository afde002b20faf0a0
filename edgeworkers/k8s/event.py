"""core/v1 Event, as the agent records pod lifecycle (Pulled, Created, Started, Killing, BackOff ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from edgeworkers.k8s.meta import K8sModel, K8sObject, ObjectReference
from edgeworkers.k8s.timefmt import format_time

if TYPE_CHECKING:  # the bridge records events without loading the pod models
    from edgeworkers.k8s.pod import Pod


class EventSource(K8sModel):
    component: str | None = None
    host: str | None = None


class Event(K8sObject):
    api_version: str | None = "v1"
    kind: str | None = "Event"
    involved_object: ObjectReference = Field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    count: int | None = None
    type: str | None = None
    event_time: str | None = None
    series: Any = None
    action: str | None = None
    related: ObjectReference | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None


# --- the events the node records, as kubelet's recorder writes them ---------------------------------------


def pod_event(
    pod: Pod, name: str, reason: str, message: str, kind: str, node: str, count: int, first: float, last: float,
    field_path: str = "",
) -> dict[str, Any]:  # fmt: skip
    """A core/v1 Event about ``pod`` as kubelet records it."""
    meta = pod.metadata
    involved: dict[str, Any] = {"kind": "Pod", "apiVersion": "v1", "namespace": meta.namespace, "name": meta.name,
                                "uid": meta.uid}  # fmt: skip
    if field_path:
        involved["fieldPath"] = field_path
    return _event(name, meta.namespace or "default", involved, reason, message, kind, node, count, first, last)


def node_event(
    node: str, reason: str, message: str, kind: str, count: int, first: float, last: float, name: str,
) -> dict[str, Any]:  # fmt: skip
    """A core/v1 Event about this node (in ``default``, the node's name standing for its uid, as kubelet does)."""
    involved = {"kind": "Node", "name": node, "uid": node}
    return _event(name, "default", involved, reason, message, kind, node, count, first, last)


def _event(
    name: str, namespace: str, involved: dict[str, Any], reason: str, message: str, kind: str, node: str, count: int,
    first: float, last: float,
) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": format_time(first),
        "lastTimestamp": format_time(last),
        "count": count,
        "type": kind,
        "reportingComponent": "kubelet",
        "reportingInstance": node,
    }
