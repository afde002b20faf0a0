"""Worker scaling: pods/s through the agent's queues and by raw Docker SDK calls, for 1, 2 and 4 worker processes x
1, 4 and 8 threads, in one run; and where Docker itself becomes the limit.

    .venv/bin/python ops/bench/scaling.py --pods 30

For each configuration P x T, an `edgeworkers worker --processes P --threads T` starts N pods applied at once
through ``pods.desired`` (as pods.py does), and P*T threads start the same containers by raw Docker SDK calls: the
same concurrency against the engine. The two go first in turn. It prints the machine's cores, a row per
configuration (pods/s of both and their ratio), raw Docker's own curve by concurrency and where it flattens (more
concurrent calls no longer start pods faster: the engine is the limit), and the smallest configuration within 10 %
of the best queue rate: what to size `EDGEWORKERS_WORKER_PROCESSES` x `EDGEWORKERS_WORKER_THREADS` to.

It uses a free database of the Redis at --redis-url (default: the test Redis), its own node label, and removes
every container, worker and key it made.
"""
from __future__ import annotations

import itertools
import os

import docker
import typer
from benchkit import QueuePath, Result, bench_settings, both_paths, remove_bench_node

# More concurrency that raises raw Docker's rate by less than this has reached the engine's limit.
FLAT_GAIN = 1.10
# A configuration this close to the best queue rate is as good (runs spread by about this much on a busy machine).
NEAR_BEST = 0.90


def flattens_at(curve: dict[int, float]) -> int:
    """The concurrency beyond which more concurrent calls gain less than ``FLAT_GAIN`` (the largest if never)."""
    points = sorted(curve)
    for low, high in itertools.pairwise(points):
        if max(curve[c] for c in points if c >= high) < curve[low] * FLAT_GAIN:
            return low
    return points[-1]


def main(
    pods: int = typer.Option(30, help="Pods started on each path, per configuration."),
    processes: str = typer.Option("1,2,4", help="Worker processes to try (comma-separated)."),
    threads: str = typer.Option("1,4,8", help="Threads per process to try (comma-separated)."),
    redis_url: str = typer.Option("redis://127.0.0.1:6399", help="A Redis server; a free database is claimed."),
    image: str = typer.Option("busybox", help="The app container's image (local)."),
) -> None:
    configurations = [(p, t) for p in map(int, processes.split(",")) for t in map(int, threads.split(","))]
    client = docker.from_env()
    settings = bench_settings(redis_url)
    results: list[tuple[int, int, Result, Result]] = []
    print(f"{os.cpu_count()} CPU cores, docker {client.version()['Version']}, {pods} pods per configuration", flush=True)
    print(f"{'processes':>9} {'threads':>7} {'concurrency':>11} {'queues pods/s':>13} {'raw pods/s':>10} {'ratio':>5}")
    try:
        for index, (procs, thr) in enumerate(configurations):
            queues = QueuePath(client, settings, procs, thr, image)
            try:  # each path goes first in turn
                queued, raw = both_paths(client, queues, f"c{index}", pods, procs * thr, image, index % 2 == 0)
            finally:
                queues.close()
            results.append((procs, thr, queued, raw))
            print(f"{procs:>9} {thr:>7} {procs * thr:>11} {queued.rate:>13.2f} {raw.rate:>10.2f} "
                  f"{queued.rate / raw.rate:>5.2f}", flush=True)  # fmt: skip
    finally:
        remove_bench_node(client, settings)

    curve: dict[int, float] = {}
    for procs, thr, _, raw in results:
        curve[procs * thr] = max(curve.get(procs * thr, 0.0), raw.rate)
    print("raw Docker by concurrency: " + ", ".join(f"{c}: {rate:.2f} pods/s" for c, rate in sorted(curve.items())))
    limit = flattens_at(curve)
    print(
        f"Docker is the limit from about {limit} concurrent calls ({curve[limit]:.2f} pods/s, at most "
        f"{max(curve.values()):.2f} with more): beyond it more workers cannot start pods faster on this machine"
    )
    best = max(queued.rate for _, _, queued, _ in results)
    procs, thr, queued, raw = min(
        (r for r in results if r[2].rate >= best * NEAR_BEST), key=lambda r: (r[0] * r[1], r[0])
    )
    print(
        f"smallest configuration within {1 - NEAR_BEST:.0%} of the best queue rate ({best:.2f} pods/s): "
        f"{procs} process(es) x {thr} thread(s) ({queued.rate:.2f} pods/s, {queued.rate / raw.rate:.2f} of raw)"
    )


if __name__ == "__main__":
    typer.run(main)
