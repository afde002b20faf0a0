"""The usage job's sampling (``kubectl top``): the runtime's ``usage()`` (cgroup files) beside Docker's one-shot stats
of the same containers, and the Docker list call as a baseline, in one run.

    .venv/bin/python ops/bench/usage.py --containers 10 --runs 5
"""
from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import docker
from benchkit import remove_containers

from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import ContainerID


def median_s(func: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    node = f"bench-usage-{uuid.uuid4().hex[:8]}"
    client = docker.from_env()
    try:
        ids = [ContainerID("docker", client.containers.run(
            "busybox", ["sleep", "600"], detach=True, labels={labels.NODE: node}).id) for _ in range(args.containers)]
        runtime = DockerRuntime(node)
        listed = median_s(lambda: client.api.containers(filters={"label": f"{labels.NODE}={node}"}), args.runs)
        cgroup = median_s(lambda: runtime.usage(ids), args.runs)
        assert len(runtime.usage(ids)) == len(ids), "a container's usage is missing"
        stats = median_s(lambda: [runtime._stats_usage(i) for i in ids], 1)  # seconds per run: once
        print(f"{args.containers} containers, median of {args.runs}: usage() {cgroup * 1000:.1f} ms, "
              f"Docker list {listed * 1000:.1f} ms (ratio {cgroup / listed:.2f}); "
              f"Docker one-shot stats, one after another: {stats * 1000:.0f} ms (usage()/stats {cgroup / stats:.4f})")
    finally:
        remove_containers(client, node)


if __name__ == "__main__":
    main()
