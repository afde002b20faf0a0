"""Event correlation as client-go's ``EventCorrelator`` (``tools/record/events_cache.go``), over plain data.

Three steps, in client-go's order, for each occurrence of an event about one object (the source is always this
node's kubelet):

- **aggregate** (``EventAggregator``): events of one type and reason whose messages differ are counted by distinct
  message; from the 10th within 10 minutes of each other (``max_events``, ``max_interval_s``), they are recorded as
  one event, "(combined from similar events): <the latest message>";
- **count** (``eventLogger``): a repeat of an event (same field path, type, reason and message, or the same combined
  event) is the first one again, under its name, with its ``count`` raised and a new ``lastTimestamp``: the uplink
  patches it at the cloud instead of creating another;
- **rate-limit** (``EventSourceObjectSpamFilter``): a token bucket per object, 25 events at once then one every 5
  minutes; an occurrence over it is skipped (its count is still kept, so the next one sent carries it).

client-go keeps this state in one process's LRU caches; here several processes (the worker, the agent's prober and
eviction manager) record events about one pod, so the state of each object is one plain ``ObjectState`` the
recorder keeps in Redis (``events.recorder``). ``correlate`` is pure: the state in, the state and the verdict out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COMBINED_PREFIX = "(combined from similar events): "


@dataclass(frozen=True)
class CorrelatorPolicy:
    """client-go's defaults (``NewEventCorrelator``); ``max_logged`` bounds the counted events kept per object (client-go
    bounds its caches to 4096 entries for the whole process)."""

    max_events: int = 10
    max_interval_s: float = 600.0
    spam_burst: int = 25
    spam_qps: float = 1.0 / 300.0
    max_logged: int = 64

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_interval_s <= 0 or self.spam_burst < 1 or self.spam_qps <= 0:
            raise ValueError(f"invalid event correlation policy: {self}")
        if self.max_logged < 1:
            raise ValueError(f"invalid event correlation policy: {self}")

    @property
    def idle_s(self) -> float:
        """After this long without an event about an object its state is a fresh one's: the bucket is full again, the
        aggregation windows are over."""
        return max(self.spam_burst / self.spam_qps, self.max_interval_s)


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of an event about an object (named ``object_name``)."""

    object_name: str
    type: str
    reason: str
    message: str
    field_path: str = ""


@dataclass(frozen=True)
class Correlated:
    """What to record: the event ``name`` with this ``count``, ``first`` seen then, saying ``message``. ``count`` above
    1: the event exists already (patch it); ``skip``: over the rate limit, record nothing."""

    name: str = ""
    count: int = 0
    first: float = 0.0
    message: str = ""
    skip: bool = False


@dataclass
class ObjectState:
    """The correlation state of one object: its token bucket, its aggregation records (messages and last time, by
    type and reason), and its counted events (by event key)."""

    tokens: float
    refilled: float
    aggregates: dict[str, dict[str, Any]] = field(default_factory=dict)
    logged: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def fresh(cls, policy: CorrelatorPolicy, now: float) -> ObjectState:
        return cls(tokens=float(policy.spam_burst), refilled=now)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "refilled": self.refilled, "aggregates": self.aggregates,
                "logged": self.logged}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectState:
        return cls(float(data["tokens"]), float(data["refilled"]), dict(data.get("aggregates") or {}),
                   dict(data.get("logged") or {}))  # fmt: skip


def correlate(state: ObjectState, event: Occurrence, now: float, policy: CorrelatorPolicy) -> Correlated:
    """Aggregate, count and rate-limit one occurrence, updating ``state`` (client-go's ``EventCorrelate``)."""
    _forget_idle(state, now, policy)
    message, key = _aggregate(state, event, now, policy)
    logged = state.logged.get(key)
    if logged is None:
        logged = {"name": _new_name(state, event.object_name, now), "count": 0, "first": now}
    logged = {**logged, "count": logged["count"] + 1, "last": now}
    state.logged.pop(key, None)  # re-inserted last: the dict's order is the least recently observed first
    state.logged[key] = logged
    while len(state.logged) > policy.max_logged:
        del state.logged[next(iter(state.logged))]
    if not _take_token(state, now, policy):
        return Correlated(skip=True)
    return Correlated(logged["name"], logged["count"], logged["first"], message)


def _aggregate(state: ObjectState, event: Occurrence, now: float, policy: CorrelatorPolicy) -> tuple[str, str]:
    """The message to record and the key its count is kept under: the event's own, or, once ``max_events`` distinct
    messages of its type and reason came within ``max_interval_s`` of each other, the combined event's."""
    aggregate_key = f"{event.type}\0{event.reason}"
    record = state.aggregates.get(aggregate_key)
    if record is None or now - record["last"] > policy.max_interval_s:
        record = {"messages": [], "last": now}
    if event.message not in record["messages"]:
        record["messages"].append(event.message)
    record["last"] = now
    state.aggregates[aggregate_key] = record
    if len(record["messages"]) < policy.max_events:
        return event.message, f"{event.field_path}\0{aggregate_key}\0{event.message}"
    record["messages"].pop(0)  # the set never grows past the threshold (client-go pops any one)
    return COMBINED_PREFIX + event.message, f"\0combined\0{aggregate_key}"


def _take_token(state: ObjectState, now: float, policy: CorrelatorPolicy) -> bool:
    """The object's token bucket: full (``spam_burst``) at first, refilled at ``spam_qps``."""
    elapsed = max(0.0, now - state.refilled)
    state.tokens = min(float(policy.spam_burst), state.tokens + elapsed * policy.spam_qps)
    state.refilled = now
    if state.tokens < 1.0:
        return False
    state.tokens -= 1.0
    return True


def _forget_idle(state: ObjectState, now: float, policy: CorrelatorPolicy) -> None:
    """Drop aggregation records past their window, and counted events not seen for ``idle_s``: the state of an
    object stays small however long it lives."""
    state.aggregates = {k: r for k, r in state.aggregates.items() if now - r["last"] <= policy.max_interval_s}
    state.logged = {k: e for k, e in state.logged.items() if now - e["last"] <= policy.idle_s}


def _new_name(state: ObjectState, object_name: str, now: float) -> str:
    """kubelet's name for a new event, ``<object>.<unix nanoseconds in hex>``; unique among the object's events."""
    taken = {logged["name"] for logged in state.logged.values()}
    stamp = int(now * 1e9)
    while f"{object_name}.{stamp:x}" in taken:
        stamp += 1
    return f"{object_name}.{stamp:x}"
