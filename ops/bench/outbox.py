#!/usr/bin/env python3
"""The outbox's memory bound under a long outage: Redis's own ``MEMORY USAGE`` of the outbox's keys after the node
recorded --cap events (the baseline, a full outbox) and after ten times as many (a long outage: the oldest dropped),
each event about a pod of its own (so no rate limit holds one back) with kubelet's shape, plus the event correlation
state kept per object. Needs only a Redis (the test Redis of ``ops/test``, a database of its own, emptied after).

    .venv/bin/python ops/bench/outbox.py --cap 1000
"""
from __future__ import annotations

import argparse
import os

import redis
from benchkit import claim_database, print_command

from edgeworkers import constants
from edgeworkers.events.correlator import CorrelatorPolicy
from edgeworkers.events.recorder import EventRecorder
from edgeworkers.k8s.pod import Pod
from edgeworkers.metamanager.outbox import Outbox

OUTBOX_KEYS = (constants.KEY_OUTBOX_ITEMS, constants.KEY_OUTBOX_EVENTS, constants.KEY_OUTBOX_ORDER)


def record(client: redis.Redis, outbox: Outbox, start: int, count: int) -> None:
    recorder = EventRecorder(client, "bench-node", outbox=outbox)
    for i in range(start, start + count):
        pod = Pod.model_validate({"metadata": {"name": f"pod-{i}", "namespace": "default", "uid": f"uid-{i:08d}"},
                                  "spec": {"containers": [{"name": "app", "image": "busybox"}]}})  # fmt: skip
        recorder(pod, "BackOff", f"Back-off restarting failed container app in pod pod-{i}_default(uid-{i:08d})",
                 "Warning")  # fmt: skip


def usage(client: redis.Redis, keys: list[str]) -> int:
    return sum(client.memory_usage(key, samples=0) or 0 for key in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap", type=int, default=1000, help="the outbox's cap of events (EDGEWORKERS_OUTBOX_MAX_EVENTS)")
    parser.add_argument("--redis", default=os.environ.get("EDGEWORKERS_TEST_REDIS", "redis://127.0.0.1:6399"))
    args = parser.parse_args()
    client = redis.Redis.from_url(claim_database(args.redis))
    try:
        outbox = Outbox(client, max_events=args.cap)
        record(client, outbox, 0, args.cap)
        full = usage(client, list(OUTBOX_KEYS))
        record(client, outbox, args.cap, 9 * args.cap)
        outage = usage(client, list(OUTBOX_KEYS))
        state_keys = [key.decode() for key in client.scan_iter(f"{constants.KEY_EVENTS}:*", count=1000)]
        state = usage(client, state_keys)
        loads = print_command()
        print(f"load average now {loads}; cap {args.cap} events\n")
        print(f"  {'after':32} {'events kept':>11} {'dropped':>8} {'outbox KB':>10} {'/ full':>7}")
        print(f"  {f'{args.cap} events (full)':32} {len(outbox):>11} {0:>8} {full / 1024:>10.0f} {1.0:>7.2f}")
        print(f"  {f'{10 * args.cap} events (long outage)':32} {len(outbox):>11} {outbox.events_dropped():>8} "
              f"{outage / 1024:>10.0f} {outage / full:>7.2f}")
        print(f"\n  per event kept: {outage / len(outbox):.0f} bytes; correlation state of {len(state_keys)} objects: "
              f"{state / 1024:.0f} KB ({state / max(len(state_keys), 1):.0f} bytes each, expiring after "
              f"{round(CorrelatorPolicy().idle_s)} s idle)")
    finally:
        client.flushdb()


if __name__ == "__main__":
    main()
