"""The pod lifecycle event generator (kubelet's GenericPLEG): relist the runtime, diff, emit events.

One relist is one node-wide ``Runtime.list_containers()`` (one Docker list call; ``DockerRuntime`` inspects
only containers whose state changed since its last list, and prunes its inspect cache there). The diff with the
previous relist is a pure function (``compute_events``), tested from tables; ``GenericPLEG`` keeps the previous
relist, the time of the last successful one, and answers ``healthy()``.

The scheduler (process ``scheduler``) relists every second and turns each pod with events into a ``sync_pod``
task, so the pod's restart policy and back-off (``pods.policy``) act on a container that died. It also writes the
time of its last successful relist to Redis (``KEY_PLEG_LAST_RELIST``), which the node status reads: a PLEG that
has not relisted for ``RELIST_THRESHOLD_S`` makes the node not Ready, with kubelet's message.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edgeworkers.constants import KEY_PLEG_LAST_RELIST
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerID, ContainerState, PodRef

# kubelet's relistThreshold: a PLEG that has not relisted for this long is unhealthy.
RELIST_THRESHOLD_S = 180.0
# Redis: the wall-clock time (seconds, a float) of the scheduler's last successful relist.


class EventType(str, enum.Enum):
    CONTAINER_STARTED = "ContainerStarted"
    CONTAINER_DIED = "ContainerDied"
    CONTAINER_REMOVED = "ContainerRemoved"
    CONTAINER_CHANGED = "ContainerChanged"


@dataclass(frozen=True)
class PodLifecycleEvent:
    """Something happened to one container (sandboxes included) of a pod."""

    pod: PodRef
    type: EventType
    container_id: ContainerID
    container_name: str


class _State(enum.Enum):
    """kubelet's plegContainerState: CREATED counts as UNKNOWN (kubelet does not use it either)."""

    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"
    NON_EXISTENT = "non-existent"


def _state(container: Container | None) -> _State:
    if container is None:
        return _State.NON_EXISTENT
    if container.state == ContainerState.RUNNING:
        return _State.RUNNING
    if container.state == ContainerState.EXITED:
        return _State.EXITED
    return _State.UNKNOWN


def _transition(old: _State, new: _State) -> list[EventType]:
    """kubelet's generateEvents for one container."""
    if old == new:
        return []
    if new == _State.RUNNING:
        return [EventType.CONTAINER_STARTED]
    if new == _State.EXITED:
        return [EventType.CONTAINER_DIED]
    if new == _State.UNKNOWN:
        return [EventType.CONTAINER_CHANGED]
    if old == _State.EXITED:  # new is NON_EXISTENT
        return [EventType.CONTAINER_REMOVED]
    return [EventType.CONTAINER_DIED, EventType.CONTAINER_REMOVED]


def compute_events(old: Mapping[str, Container], new: Mapping[str, Container]) -> list[PodLifecycleEvent]:
    """The events between two relists, each a map of container id -> container; in container id order."""
    events = []
    for ident in sorted(old.keys() | new.keys()):
        before, after = old.get(ident), new.get(ident)
        container = after or before
        assert container is not None
        for kind in _transition(_state(before), _state(after)):
            events.append(PodLifecycleEvent(container.pod, kind, container.id, container.name))
    return events


def pods_with_events(events: list[PodLifecycleEvent]) -> list[str]:
    """The pod keys ("namespace/name") the events concern, each once, in first-event order."""
    return list(dict.fromkeys(event.pod.key for event in events))


def health_error(last_relist: float | None, now: float, threshold_s: float = RELIST_THRESHOLD_S) -> str:
    """Why the PLEG is unhealthy ("" when healthy), as kubelet words it. ``None``: no relist recorded yet (no
    scheduler has run on this node): counted healthy, since nothing says otherwise."""
    if last_relist is None:
        return ""
    elapsed = now - last_relist
    if elapsed <= threshold_s:
        return ""
    return f"PLEG is not healthy: pleg was last seen active {_duration(elapsed)} ago; threshold is {_duration(threshold_s)}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class GenericPLEG:
    """One public step, ``relist()``; ``healthy()`` from the time of the last successful one."""

    def __init__(
        self,
        runtime: Runtime,
        clock: Callable[[], float] = time.monotonic,
        threshold_s: float = RELIST_THRESHOLD_S,
    ) -> None:
        self._runtime = runtime
        self._clock = clock
        self._threshold_s = threshold_s
        self._previous: dict[str, Container] = {}
        self.last_relist: float | None = None
        self.started_at = clock()

    def relist(self) -> list[PodLifecycleEvent]:
        """List the node's containers, return the events since the last relist. A runtime error escapes (and
        the previous relist is kept, so the next successful one reports everything that changed meanwhile)."""
        current = {c.id.id: c for c in self._runtime.list_containers()}
        events = compute_events(self._previous, current)
        self._previous = current
        self.last_relist = self._clock()
        return events

    def reset(self) -> None:
        """Forget the previous relist: the next one reports every container as new (every pod gets an event)."""
        self._previous = {}

    @property
    def containers(self) -> list[Container]:
        """The containers as the last relist saw them."""
        return list(self._previous.values())

    def healthy(self) -> tuple[bool, str]:
        """(False, why) when the last successful relist (or the start, before one) is older than the threshold."""
        error = health_error(self.last_relist or self.started_at, self._clock(), self._threshold_s)
        return not error, error


def recorded_health_error(client: Any, now: float, threshold_s: float = RELIST_THRESHOLD_S) -> str:
    """``health_error`` from the relist time the scheduler records in Redis (``client``: a redis.Redis); a Redis
    that cannot be read says nothing about the PLEG ("")."""
    try:
        raw = client.get(KEY_PLEG_LAST_RELIST)
    except Exception:  # noqa: BLE001 - redis-py's errors: the node status reports Redis trouble elsewhere
        return ""
    return health_error(float(raw) if raw else None, now, threshold_s)
