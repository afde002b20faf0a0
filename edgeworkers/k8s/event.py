"""core/v1 Event, as the agent records pod lifecycle (Pulled, Created, Started, Killing, BackOff ...)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from edgeworkers.k8s.meta import K8sModel, K8sObject, ObjectReference


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
