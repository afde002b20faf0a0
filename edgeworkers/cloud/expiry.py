"""Events expire an hour after they last happened, as with the API server's ``--event-ttl`` (1 h)."""
from __future__ import annotations

import asyncio
import datetime as dt

import structlog

from edgeworkers.cloud.store import Clock, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.printers import parse_time

log = structlog.get_logger(__name__)

EVENT_TTL = dt.timedelta(hours=1)


def expired_events(events: list[dict], now: dt.datetime, ttl: dt.timedelta = EVENT_TTL) -> list[tuple[str, str]]:
    """(namespace, name) of the events last seen longer than ``ttl`` ago."""
    out = []
    for event in events:
        meta = event["metadata"]
        last = (parse_time(event.get("lastTimestamp")) or parse_time(event.get("eventTime"))
                or parse_time(meta.get("creationTimestamp")))
        if last is not None and now - last > ttl:
            out.append((meta["namespace"], meta["name"]))
    return out


async def expire_events(store: Store, hub: Hub, clock: Clock, every: float = 60.0) -> None:
    """Delete expired events every ``every`` seconds, for as long as the server runs."""
    while True:
        await asyncio.sleep(every)
        try:
            for namespace, name in expired_events(store.list("events"), clock()):
                hub.publish(store.delete("events", namespace, name))
        except Exception:  # one failed sweep must not stop the next
            log.exception("event expiry failed")
