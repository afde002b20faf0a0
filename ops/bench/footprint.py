#!/usr/bin/env python3
"""The edge's memory footprint: the lite agent (`edgeworkers agent`, one process, ``Procfile.lite``), then the full
mode (the ``Procfile``'s `edgeworkers agent --no-worker` and `edgeworkers worker`), each with N pods; ``--modes`` may
add ``split``: the edge's parts each in a process of its own (`edgeworkers node serve`, `edgeworkers worker`,
`edgeworkers scheduler`), the full mode's shape until the imports they share made it the costliest.

For each mode it starts its own cloud (`edgeworkers cloud serve`, temp data dir, free port) and the edge processes for
a node name of its own on a free database of the Redis at --redis-url (through ops/bench/bridge.py's ``Edge``), applies
N busybox pods with kubectl and waits until the cloud shows them all Running. Then it prints the PSS (psutil's
``memory_full_info().pss``, children included: the dramatiq worker processes) of every edge process and their total,
once the pods have run for --settle seconds, and again after --syncs more pod syncs (``sync_pod`` tasks enqueued
round-robin over the running pods, waited for until the queue is drained, then --settle seconds; --rounds times),
beside the targets: lite under 70 MB and within 5 % after the syncs; full mode (and split) at most 128 MB. The cloud is
not an edge process and is not counted (it shares the interpreter's and the libraries' pages with the edge processes,
as on a real machine). ``--processes``/``--threads`` set the worker's (default: config).

    .venv/bin/python ops/bench/footprint.py                          # 100 pods, 10,000 syncs
    .venv/bin/python ops/bench/footprint.py --pods 20 --syncs 1000   # a quick check
    .venv/bin/python ops/bench/footprint.py --modes lite --run-for 3600   # the lite target: after an hour of work

Everything it made (containers, processes, Redis databases, temp dirs) is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import psutil
import redis
import yaml
from benchkit import claim_database, mb, print_command, teardown
from bridge import EDGEWORKERS, NAMESPACE, Edge, busybox_pod, running, wait_until

from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.constants import QUEUE_POD_SYNC
from edgeworkers.kubeclient import ApiError, CloudUnavailable
from edgeworkers.redisconn import redis_client
from edgeworkers.tasks import send_sync
from scheduler.nodejobs import pleg_message

LITE_TARGET_MB = 70.0
FULL_TARGET_MB = 128.0
GROWTH_TARGET = 0.05
TIMEOUT_S = 900.0


class Mode(Edge):
    """The cloud, then the edge in one mode: ``lite`` (`edgeworkers agent`), ``full`` (`edgeworkers agent
    --no-worker` and `edgeworkers worker`) or ``split`` (as ``Edge.start_loop``)."""

    agent: subprocess.Popen | None = None

    def start_lite(self, threads: int) -> None:
        self._start_agent(["--threads", str(threads)])

    def start_full(self) -> None:
        self.worker = self._start("worker", [EDGEWORKERS, "worker", "--processes", str(self.processes),
                                             "--threads", str(self.threads)])
        self._start_agent(["--no-worker"])
        wait_until(lambda: self._check(self.worker, "worker") or (self.root / "worker.log").read_text(
            errors="replace").count("Worker process is ready for action.") >= self.processes, 60, "the worker")

    def _start_agent(self, options: list[str]) -> None:
        self.agent = self._start("agent", [EDGEWORKERS, "agent", *options])

        def ready() -> bool:
            self._check(self.agent, "agent")
            log = (self.root / "agent.log").read_text(errors="replace")
            return "agent is ready" in log and "scheduler is ready" in log and self._node_ready()

        wait_until(ready, 120, "the agent to be ready and its node Ready")

    def edge_processes(self) -> tuple[subprocess.Popen | None, ...]:
        return (self.agent, *super().edge_processes())

    def _node_ready(self) -> bool:
        try:
            node = self.api.get(f"/api/v1/nodes/{self.node}")
        except (ApiError, CloudUnavailable):
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def processes_by_name(self) -> dict[str, psutil.Process]:
        """The edge's processes (children included), named as in the Procfile."""
        named = {"agent": self.agent, "worker": self.worker, "bridge": self.bridge, "scheduler": self.scheduler}
        found = {}
        for name, popen in named.items():
            if popen is None:
                continue
            process = psutil.Process(popen.pid)
            found[name] = process
            for index, child in enumerate(process.children(recursive=True)):
                found[f"{name} child {index + 1} ({child.name()})"] = child
        return found


@dataclass
class Sample:
    label: str
    pss: dict[str, int]
    rss: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.pss.values())


def measure(mode: Mode, label: str) -> Sample:
    memory = {name: p.memory_full_info() for name, p in mode.processes_by_name().items()}
    return Sample(label, {name: m.pss for name, m in memory.items()}, {name: m.rss for name, m in memory.items()})


def start_pods(mode: Mode, pods: int) -> list[str]:
    """N busybox pods applied with kubectl, waited for until the cloud shows them all Running; their keys."""
    names = [f"fp-{i:03d}" for i in range(pods)]
    mode.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([busybox_pod(name, {"bench": "fp"}) for name in names]))

    def all_running() -> bool:
        listed = mode.api.list(f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": "bench=fp"})
        return sum(running(pod.get("status")) for pod in listed.get("items") or []) == pods

    wait_until(all_running, TIMEOUT_S, f"{pods} pods Running")
    return [f"{NAMESPACE}/{name}" for name in names]


def sync_all(settings: Settings, client: redis.Redis, keys: list[str], syncs: int) -> float:
    """Enqueue ``syncs`` sync_pod tasks round-robin over ``keys`` and wait until none is queued or in flight;
    the seconds it took."""
    broker = make_broker(settings, redis_client(settings))
    started = time.monotonic()
    for index in range(syncs):
        key = keys[index % len(keys)]
        send_sync(broker, key, pleg_message(key))

    def drained() -> bool:
        queued = client.llen(f"dramatiq:{QUEUE_POD_SYNC}")
        in_flight = sum(client.scard(ack) for ack in client.scan_iter(f"dramatiq:__acks__.*.{QUEUE_POD_SYNC}"))
        return queued == 0 and in_flight == 0

    wait_until(drained, TIMEOUT_S, f"{syncs} syncs done")
    broker.close()
    return time.monotonic() - started


def run_mode(name: str, args: argparse.Namespace, docker_client: docker.DockerClient) -> tuple[list[Sample], float]:
    root = Path(tempfile.mkdtemp(prefix=f"edgeworkers-bench-footprint-{name}-"))
    db_url = claim_database(args.redis_url)
    client = redis.Redis.from_url(db_url)
    defaults = Settings()
    mode = None
    try:
        mode = Mode(root, db_url, args.processes or defaults.worker_processes, args.threads or defaults.worker_threads)
        if name == "lite":
            mode.start_lite(args.threads or defaults.worker_threads)
        elif name == "full":
            mode.start_full()
        else:
            mode.start_loop()
        print(f"{name}: edge up; starting {args.pods} pods", flush=True)
        keys = start_pods(mode, args.pods)
        time.sleep(args.run_for or args.settle)  # the pods' normal work: PLEG relists, status resyncs, heartbeats
        samples = [measure(mode, f"{args.pods} pods running")]
        seconds = 0.0
        for round_ in range(1, args.rounds + 1):
            print(f"{name}: {mb(samples[-1].total)} MB; {args.syncs} syncs", flush=True)
            seconds += sync_all(mode.settings, client, keys, args.syncs)
            time.sleep(args.settle)
            samples.append(measure(mode, f"after {round_ * args.syncs} syncs"))
        return samples, seconds
    finally:
        teardown(mode, docker_client, client, root)


def report(name: str, samples: list[Sample], seconds: float, syncs: int, target_mb: float) -> None:
    first, last = samples[0], samples[-1]
    print(f"\n{name} mode, PSS MB")
    print(f"  {'process':<34}" + "".join(f" {sample.label:>20}" for sample in samples))
    for process in first.pss:
        print(f"  {process:<34}" + "".join(f" {mb(sample.pss.get(process, 0)):>20}" for sample in samples))
    print(f"  {'total':<34}" + "".join(f" {mb(sample.total):>20}" for sample in samples))
    print(f"  {'total RSS (shared pages each time)':<34}"
          + "".join(f" {mb(sum(sample.rss.values())):>20}" for sample in samples))
    growth = last.total / first.total - 1
    worst = max(sample.total for sample in samples) / 2**20
    print(f"  target total <= {target_mb:g} MB: {'met' if worst <= target_mb else 'MISSED'} ({worst:.1f} MB); "
          f"growth over {syncs * (len(samples) - 1)} syncs {growth:+.1%} (target within {GROWTH_TARGET:.0%}: "
          f"{'met' if abs(growth) <= GROWTH_TARGET else 'MISSED'}); {syncs * (len(samples) - 1) / seconds:.0f} syncs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=100, help="pods running in each mode")
    parser.add_argument("--syncs", type=int, default=10_000, help="pod syncs between the two measurements")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --syncs syncs, each measured after")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds of normal work before each measurement")
    parser.add_argument("--run-for", type=float, default=0.0,
                        help="seconds of normal work before the first measurement instead (3600: the target's hour)")
    parser.add_argument("--threads", type=int, default=0, help="worker threads (per process; default: config)")
    parser.add_argument("--processes", type=int, default=0, help="the full mode's worker processes (default: config)")
    parser.add_argument("--modes", default="lite,full", help="which modes (lite, full, split), in order")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6399", help="a Redis server; a free db is claimed")
    args = parser.parse_args()
    if not shutil.which("kubectl"):
        raise SystemExit("kubectl is not on PATH")
    docker_client = docker.from_env()
    results = {name: run_mode(name, args, docker_client) for name in args.modes.split(",")}

    defaults = Settings()
    load = print_command()
    print(f"docker {docker_client.version()['Version']}, {os.cpu_count()} CPUs, load average now {load}; "
          f"full mode: worker {args.processes or defaults.worker_processes} process(es) x "
          f"{args.threads or defaults.worker_threads} threads; lite: {args.threads or defaults.worker_threads} threads")
    for name, (samples, seconds) in results.items():
        report(name, samples, seconds, args.syncs, LITE_TARGET_MB if name == "lite" else FULL_TARGET_MB)
    if {"lite", "full"} <= results.keys():
        lite, full = (results[name][0][0].total for name in ("lite", "full"))
        print(f"\nlite / full mode, {args.pods} pods running: {lite / full:.2f}")


if __name__ == "__main__":
    main()
