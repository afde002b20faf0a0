"""Pod start-up through the agent's queues vs. the same containers by raw Docker SDK calls, in one run.

    .venv/bin/python ops/bench/pods.py --pods 50 --workers 4 --rounds 4 --singles 10

Raw: W threads each create and start a sandbox (the pause image, its own network and shareable IPC) and an
app container joined to it, for N pods. Queues: N busybox pods applied at once through ``pods.desired``
(MetaManager + pod_add), run by `edgeworkers worker --processes 1 --threads W`. Prints pods/s for both,
their ratio (queues / raw; target >= 0.95) and the p50/p99 latency from enqueue to a running app container.
The two paths alternate over the rounds, each going first in turn. Then ``--singles`` times one pod alone on
each path (alternating likewise, the worker idle before each): the difference of their p50 latencies is what
the queues add to a single pod (target <= 50 ms).

It uses a free database of the Redis at --redis-url (default: the test Redis), its own node label, and removes
every container, worker and key it made.
"""
from __future__ import annotations

import os

import docker
import typer
from benchkit import QueuePath, Result, bench_settings, both_paths, remove_bench_node, total

BURST_RATIO_TARGET = 0.95
SINGLE_EXTRA_TARGET_MS = 50


def main(
    pods: int = typer.Option(50, help="Pods to start on each path, per round."),
    workers: int = typer.Option(4, help="Worker threads (queues) and threads making raw calls."),
    rounds: int = typer.Option(4, help="Rounds; each path goes first in turn (a busy machine skews one round)."),
    singles: int = typer.Option(10, help="Single pods timed alone on each path, after the rounds (0: none)."),
    redis_url: str = typer.Option("redis://127.0.0.1:6399", help="A Redis server; a free database is claimed."),
    image: str = typer.Option("busybox", help="The app container's image (local)."),
) -> None:
    client = docker.from_env()
    settings = bench_settings(redis_url)
    raws: list[Result] = []
    queued: list[Result] = []
    single_raw: list[Result] = []
    single_queued: list[Result] = []
    queues = None

    def one_round(prefix: str, count: int, raw_first: bool, raw_into: list[Result], queued_into: list[Result]) -> None:
        queued_result, raw_result = both_paths(client, queues, prefix, count, workers, image, raw_first)
        raw_into.append(raw_result)
        queued_into.append(queued_result)

    try:
        queues = QueuePath(client, settings, 1, workers, image)
        for round_ in range(rounds):
            one_round(f"r{round_}", pods, round_ % 2 == 0, raws, queued)  # each path first in turn
            print(f"round {round_}: raw {raws[-1].rate:.2f} pods/s, queues {queued[-1].rate:.2f} pods/s", flush=True)
        for single in range(singles):
            one_round(f"s{single}", 1, single % 2 == 0, single_raw, single_queued)
    finally:
        if queues is not None:
            queues.close()
        remove_bench_node(client, settings)
    print(f"pods={pods} x {rounds} rounds, workers={workers} (docker {client.version()['Version']}, {os.cpu_count()} CPUs)")
    if rounds:
        raw, queue = total("raw", raws), total("queues", queued)
        print(raw.line())
        print(queue.line())
        print(f"burst ratio queues/raw = {queue.rate / raw.rate:.2f} (target >= {BURST_RATIO_TARGET})")
    if singles:
        raw_ms = total("raw", single_raw).quantile(50) * 1000
        queue_ms = total("queues", single_queued).quantile(50) * 1000
        print(
            f"single pod ({singles} each): enqueue→running p50 {queue_ms:.0f} ms vs raw Docker {raw_ms:.0f} ms: "
            f"{queue_ms - raw_ms:+.0f} ms (target ≤ {SINGLE_EXTRA_TARGET_MS} ms)"
        )


if __name__ == "__main__":
    typer.run(main)
