"""The status outbox: what the node must tell the cloud, kept in Redis until the cloud has it.

Workers (and the bridge) put items; the bridge's uplink drains them in order and acks each once the cloud accepted
it. One item per key (``pod:<namespace>/<name>``): a newer item replaces the pending one and moves to the end, so
while the cloud is away a pod's statuses compact to its latest, and nothing stale can be sent after something
newer. A Redis stream keeps every entry; this keeps only what is still worth sending, which is what an edge that
is offline for days needs.

Layout: a hash of payloads by key, and sorted sets of keys scored by a sequence number (their order). ``put`` and
``ack`` are Lua scripts, so an item replaced while it was being sent is not lost by the ack of the older one.

Pod statuses first: events wait in an order of their own, sent only once no status, deletion or usage report waits,
so after a long outage a day of events never delays a status. And events alone are capped (``max_events``): past
the cap the oldest pending events are dropped (counted in ``KEY_OUTBOX_EVENTS_DROPPED``, logged once per burst of
drops), while a status is never dropped: the node's pods bound the statuses, nothing bounds what a crash-looping pod
has to say (events are best effort in kube too: client-go drops them past a queue of 1000).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis

from edgeworkers import constants

log = logging.getLogger(__name__)

POD_STATUS = "pod_status"  # patch pods/<name>/status (of the mirror pod, for a static pod)
EVENT = "event"  # record a core/v1 Event (best effort): create it, or raise the count of the one of that name
POD_DELETED = "pod_deleted"  # confirm a pod's deletion (delete grace 0, uid precondition); a static pod's mirror goes
NODE_METRICS = "node_metrics"  # the node's and its pods' CPU and memory usage, for metrics.k8s.io (the latest wins)
EVENT_KEY_PREFIX = "event:"
MAX_EVENTS = 1000  # client-go's maxQueuedEvents

_PUT = """
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
return seq
"""
# An event, then the oldest events past the cap (ARGV[3]) dropped: returns {seq, how many dropped, 1 if these drops
# start a burst}; a put with room ends the burst.
_PUT_EVENT = """
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over <= 0 then
  redis.call('DEL', KEYS[5])
  return {seq, 0, 0}
end
for _, key in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
  redis.call('HDEL', KEYS[1], key)
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
redis.call('INCRBY', KEYS[4], over)
local first = redis.call('SET', KEYS[5], 1, 'NX')
return {seq, over, first and 1 or 0}
"""
_ACK = """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Item:
    key: str
    seq: int
    payload: dict[str, Any]


def pod_item_key(namespace: str, name: str) -> str:
    return f"pod:{namespace}/{name}"


def _order_of(key: str) -> str:
    """The sorted set that orders the item ``key``: events wait apart, behind everything else."""
    return constants.KEY_OUTBOX_EVENTS if key.startswith(EVENT_KEY_PREFIX) else constants.KEY_OUTBOX_ORDER


class Outbox:
    def __init__(self, client: redis.Redis, max_events: int = MAX_EVENTS) -> None:
        if max_events < 1:
            raise ValueError(f"the outbox must hold at least one event, not {max_events}")
        self._redis = client
        self._max_events = max_events
        self._put = client.register_script(_PUT)
        self._put_event = client.register_script(_PUT_EVENT)
        self._ack = client.register_script(_ACK)

    def put(self, key: str, payload: dict[str, Any]) -> int:
        """Queue ``payload`` under ``key``, replacing a pending one; return its sequence number."""
        keys = [constants.KEY_OUTBOX_ITEMS, _order_of(key), constants.KEY_OUTBOX_SEQ]
        return int(self._put(keys=keys, args=[key, json.dumps(payload, separators=(",", ":"))]))

    def pod_status(self, namespace: str, name: str, uid: str, status: dict[str, Any], *, mirror: bool) -> int:
        """The pod's latest status for the cloud; ``mirror``: a static pod, shown through its mirror pod."""
        payload = {"op": POD_STATUS, "namespace": namespace, "name": name, "uid": uid, "status": status,
                   "mirror": mirror}
        return self.put(pod_item_key(namespace, name), payload)

    def pod_deleted(self, namespace: str, name: str, uid: str, *, mirror: bool) -> int:
        """The pod's containers are gone: confirm its deletion to the cloud (or remove the static pod's mirror)."""
        payload = {"op": POD_DELETED, "namespace": namespace, "name": name, "uid": uid, "mirror": mirror}
        return self.put(pod_item_key(namespace, name), payload)

    def event(self, namespace: str, event: dict[str, Any]) -> int:
        """A core/v1 Event for the cloud; a repeat (same name, higher count) replaces the pending one."""
        name = event["metadata"]["name"]
        payload = {"op": EVENT, "namespace": namespace, "name": name, "event": event}
        keys = [constants.KEY_OUTBOX_ITEMS, constants.KEY_OUTBOX_EVENTS, constants.KEY_OUTBOX_SEQ,
                constants.KEY_OUTBOX_EVENTS_DROPPED, constants.KEY_OUTBOX_EVENTS_DROPPING]  # fmt: skip
        args = [f"{EVENT_KEY_PREFIX}{namespace}/{name}", json.dumps(payload, separators=(",", ":")), self._max_events]
        seq, dropped, burst = self._put_event(keys=keys, args=args)
        if burst:
            log.warning("outbox: more than %d events wait for the cloud; the oldest are dropped (%d now; every drop is "
                        "counted in edgeworkers_outbox_events_dropped)", self._max_events, dropped)
        return int(seq)

    def node_metrics(self, node: str, report: dict[str, Any]) -> int:
        """The node's latest usage report (``scheduler/usage.py``); a newer one replaces the pending one."""
        return self.put(f"metrics:{node}", {"op": NODE_METRICS, "node": node, "report": report})

    def peek(self, limit: int = 100) -> list[Item]:
        """The oldest ``limit`` items, in order, without removing them: statuses (and deletions, usage) first, then
        events."""
        entries = self._redis.zrange(constants.KEY_OUTBOX_ORDER, 0, limit - 1, withscores=True)
        if len(entries) < limit:
            entries += self._redis.zrange(constants.KEY_OUTBOX_EVENTS, 0, limit - len(entries) - 1, withscores=True)
        if not entries:
            return []
        keys = [key for key, _ in entries]
        payloads = self._redis.hmget(constants.KEY_OUTBOX_ITEMS, keys)
        return [
            Item(key.decode(), int(score), json.loads(raw))
            for (key, score), raw in zip(entries, payloads)
            if raw is not None
        ]

    def ack(self, item: Item) -> bool:
        """Remove ``item`` once sent, unless a newer one replaced it meanwhile (that one stays); True if removed."""
        return bool(self._ack(keys=[constants.KEY_OUTBOX_ITEMS, _order_of(item.key)], args=[item.key, item.seq]))

    def pending(self, key: str) -> bool:
        """Whether an item is waiting under ``key``."""
        return bool(self._redis.hexists(constants.KEY_OUTBOX_ITEMS, key))

    def events_dropped(self) -> int:
        """Events dropped past the cap since Redis has held this node's data."""
        return int(self._redis.get(constants.KEY_OUTBOX_EVENTS_DROPPED) or 0)

    def __len__(self) -> int:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(constants.KEY_OUTBOX_ORDER)
        pipe.zcard(constants.KEY_OUTBOX_EVENTS)
        return sum(pipe.execute())
