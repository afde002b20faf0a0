"""Events the cloud's own components record (the binder's ``Scheduled``, a controller's ``SuccessfulCreate``), as
client-go's event recorder writes them: a core/v1 Event on the object, named ``<object>.<nanoseconds in hex>``."""
from __future__ import annotations

import datetime as dt

from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.timefmt import format_time


def event_on(obj: dict, kind: str, api_version: str, type_: str, reason: str, message: str, component: str,
             when: dt.datetime) -> dict:
    """The Event ``component`` records on ``obj`` (of ``kind``)."""
    meta = obj["metadata"]
    now = format_time(when)
    namespace = meta.get("namespace") or "default"  # a cluster-scoped object's events go to default, as kube's
    return {
        "metadata": {"name": f"{meta['name']}.{int(when.timestamp() * 1e9):x}", "namespace": namespace},
        "involvedObject": {"kind": kind, **({"namespace": meta["namespace"]} if meta.get("namespace") else {}),
                           "name": meta["name"], "uid": meta.get("uid", ""), "apiVersion": api_version,
                           "resourceVersion": meta.get("resourceVersion", "")},
        "reason": reason, "message": message, "type": type_,
        "source": {"component": component}, "reportingComponent": component, "reportingInstance": "",
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }


def record(store: Store, hub: Hub, event: dict) -> None:
    """Store and publish ``event``; two in one nanosecond both stay."""
    meta = event["metadata"]
    while store.find("events", meta["namespace"], meta["name"]) is not None:
        meta["name"] += "0"
    hub.publish(store.create("events", event))
