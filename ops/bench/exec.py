#!/usr/bin/env python3
"""Benchmark of `kubectl exec` through the cloud and the node endpoint, beside `docker exec` (the docker CLI) of the
same container, in one run.

It starts its own cloud, bridge (the node endpoint), worker and scheduler (``bridge.py``'s ``Edge``: a node name of
its own, a free database of the Redis at --redis-url), runs one busybox pod, and measures:

  (i)  latency: the whole command `kubectl exec POD -- true` beside `docker exec CONTAINER true`, --runs each,
       alternating; p50 and p90. Target: kubectl p50 within 2x of docker's.
  (ii) throughput: `head -c SIZE /dev/zero` (100 MB by default) through `kubectl exec` beside `docker exec`, read by
       this script in 1 MiB chunks and counted, --streams each, alternating; MB/s of the median run. Target: at least
       0.5x of docker's.

    .venv/bin/python ops/bench/exec.py --runs 30 --streams 3 --bytes 100000000

Everything it made (containers, processes, Redis keys, temp dir) is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import redis
from benchkit import claim_database, print_command, teardown
from bridge import Edge, busybox_pod, quantile, running, wait_until

from edgeworkers.runtime import labels

POD = "bench-exec"


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - started


def streamed(argv: list[str], env: dict[str, str], size: int) -> float:
    """Seconds to read the command's whole stdout (``size`` bytes, checked)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    total = 0
    while chunk := process.stdout.read1(1 << 20):
        total += len(chunk)
    if process.wait(60) != 0 or total != size:
        raise SystemExit(f"{shlex.join(argv)}: exit {process.returncode}, {total} bytes of {size}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="latency runs per command")
    parser.add_argument("--streams", type=int, default=3, help="throughput runs per command")
    parser.add_argument("--bytes", type=int, default=100_000_000, help="bytes per throughput run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6399", help="a Redis server; a free db is claimed")
    args = parser.parse_args()
    for tool in ("kubectl", "docker"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH")

    root = Path(tempfile.mkdtemp(prefix="edgeworkers-bench-exec-"))
    db_url = claim_database(args.redis_url)
    client = redis.Redis.from_url(db_url)
    docker_client = docker.from_env()
    edge = None
    latency: dict[str, list[float]] = {"kubectl exec": [], "docker exec": []}
    throughput: dict[str, list[float]] = {"kubectl exec": [], "docker exec": []}
    try:
        edge = Edge(root, db_url, 1, 2)
        edge.start_loop()
        edge.kubectl("apply", "-f", "-", input=json.dumps(busybox_pod(POD, {"bench": "exec"})))
        wait_until(lambda: running(edge.api.get(f"/api/v1/namespaces/default/pods/{POD}").get("status")), 60,
                   f"pod {POD} Running")
        (box,) = docker_client.api.containers(filters={"label": [f"{labels.NODE}={edge.node}",
                                                                  f"{labels.POD_NAME}={POD}",
                                                                  f"{labels.CONTAINER_NAME}=app"]})
        kubectl = ["kubectl", f"--kubeconfig={edge.kubeconfig}", f"--cache-dir={root / 'kube-cache'}", "exec", POD,
                   "--"]
        commands = {"kubectl exec": kubectl, "docker exec": ["docker", "exec", box["Id"]]}
        for argv in commands.values():  # warm-up: kubectl's discovery cache, the connections
            timed([*argv, "true"], edge.env)
        for run in range(args.runs):
            for name in sorted(commands, reverse=run % 2 == 1):
                latency[name].append(timed([*commands[name], "true"], edge.env))
        head = ["head", "-c", str(args.bytes), "/dev/zero"]
        for run in range(args.streams):
            for name in sorted(commands, reverse=run % 2 == 1):
                throughput[name].append(streamed([*commands[name], *head], edge.env, args.bytes))
    finally:
        teardown(edge, docker_client, client, root)

    load = print_command()
    print(f"docker {docker_client.version()['Version']} (the docker CLI), {os.cpu_count()} CPUs, load average now {load}")
    print(f"\n(i) latency of `... true`   {'n':>4} {'p50 ms':>8} {'p90 ms':>8}")
    for name, samples in latency.items():
        print(f"{name:<27} {len(samples):>4} {statistics.median(samples) * 1e3:>8.1f} {quantile(samples, 90) * 1e3:>8.1f}")
    ratio = statistics.median(latency["kubectl exec"]) / statistics.median(latency["docker exec"])
    print(f"kubectl / docker p50 = {ratio:.2f}x; target within 2x: {'met' if ratio <= 2 else 'MISSED'}")
    print(f"\n(ii) {args.bytes / 1e6:g} MB of stdout   {'n':>4} {'MB/s':>8}")
    rates = {name: args.bytes / 1e6 / statistics.median(samples) for name, samples in throughput.items()}
    for name, rate in rates.items():
        print(f"{name:<27} {len(throughput[name]):>4} {rate:>8.1f}")
    share = rates["kubectl exec"] / rates["docker exec"]
    print(f"kubectl / docker = {share:.2f}x; target at least 0.5x: {'met' if share >= 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
