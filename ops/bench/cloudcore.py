#!/usr/bin/env python3
"""What a fleet costs the cloud's event loop, in process, at a fleet's size beside a tenth of it (the baseline, in the
same run):

- the binder: N Ready nodes, then P pods arriving --batch at a time, each batch bound by one pass and followed by a
  full pass (what a change of a node asks for); the seconds the passes took. Judging each pod on every node is
  O(nodes) per pod, 100x for 10x the nodes and pods; a pass that is also O(pods) shows as a ratio well above that;
- the watch hub: --events pod events (a pod's status changing on its node) delivered to one pod watcher per node
  (each node's bridge: ``spec.nodeName=<node>``); the seconds the deliveries took.

    .venv/bin/python ops/bench/cloudcore.py --nodes 200 --pods 2000 --batch 20 --events 10000
"""
from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from benchkit import print_command

from edgeworkers.cloud.binder import Binder
from edgeworkers.cloud.selectors import parse_field_selector
from edgeworkers.cloud.store import MODIFIED, Event, Store
from edgeworkers.cloud.watch import Hub, Matcher

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def passes(nodes: int, pods: int, batch: int) -> float:
    """Seconds spent in the binder's passes binding ``pods`` pods on ``nodes`` nodes."""
    with tempfile.TemporaryDirectory(prefix="edgeworkers-bench-binder-") as root:
        store = Store(Path(root) / "objects.db", lambda: T0)
        hub = Hub(store)
        binder = Binder(store, hub, lambda: T0)
        for i in range(nodes):
            hub.publish(store.create("nodes", {"metadata": {"name": f"node-{i:03d}"}, "spec": {}, "status": {
                "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}}))
        binder.bind_pending()
        spent = 0.0
        for start in range(0, pods, batch):
            for i in range(start, min(start + batch, pods)):
                hub.publish(store.create("pods", {"metadata": {"name": f"pod-{i:05d}", "namespace": "default"},
                                                  "spec": {"containers": [{"name": "app", "image": "busybox",
                                                           "resources": {"requests": {"cpu": "10m",
                                                                                      "memory": "16Mi"}}}]}}))
            began = time.perf_counter()
            binder.bind_pending()
            spent += time.perf_counter() - began
            binder._retry_all()  # a full pass, as after a change of a node
            began = time.perf_counter()
            binder.bind_pending()
            spent += time.perf_counter() - began
        bound = sum(1 for p in store.list("pods") if p["spec"].get("nodeName"))
        store.close()
    if bound != pods:
        raise SystemExit(f"only {bound} of {pods} pods bound")
    return spent


def fanout(nodes: int, events: int) -> float:
    """Seconds to deliver ``events`` pod events (round robin over the nodes) to a pod watcher per node."""
    with tempfile.TemporaryDirectory(prefix="edgeworkers-bench-hub-") as root:
        store = Store(Path(root) / "objects.db", lambda: T0)
        hub = Hub(store)
        for i in range(nodes):
            hub.subscribe("pods", Matcher(None, fields=parse_field_selector(f"spec.nodeName=node-{i:03d}")), 0)
        changes = []
        for i in range(events):
            pod = {"metadata": {"name": f"pod-{i:05d}", "namespace": "default"},
                   "spec": {"nodeName": f"node-{i % nodes:03d}"}, "status": {"phase": "Running"}}
            changes.append(Event(MODIFIED, "pods", pod, store.resource_version + 1 + i,
                                 {**pod, "status": {"phase": "Pending"}}))
        began = time.perf_counter()
        for event in changes:
            hub._deliver(event)  # what the store's commit calls
        spent = time.perf_counter() - began
        store.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--events", type=int, default=10000)
    args = parser.parse_args()
    base = passes(args.nodes // 10, args.pods // 10, args.batch)
    full = passes(args.nodes, args.pods, args.batch)
    hub_base, hub_full = fanout(args.nodes // 10, args.events), fanout(args.nodes, args.events)
    load = print_command()
    print(f"load average {load}")
    for nodes, pods, seconds in ((args.nodes // 10, args.pods // 10, base), (args.nodes, args.pods, full)):
        print(f"{nodes:>5} nodes {pods:>6} pods: binder passes {seconds:7.2f} s, {seconds / pods * 1e3:6.2f} ms per pod")
    print(f"ratio {full / base:.0f}x for 10x the nodes and 10x the pods (each pod judged on every node: 100x)")
    for nodes, seconds in ((args.nodes // 10, hub_base), (args.nodes, hub_full)):
        print(f"{nodes:>5} nodes: {args.events} pod events to a watcher per node in {seconds:6.2f} s, "
              f"{seconds / args.events * 1e6:6.1f} us per event")
    print(f"ratio {hub_full / hub_base:.1f}x for 10x the watchers (offered to every watcher: 10x)")


if __name__ == "__main__":
    main()
