"""Pod start-up through the agent's queues vs. the same containers by raw Docker SDK calls, in one run.

    .venv/bin/python ops/bench/pods.py --pods 50 --workers 4 --rounds 4

Raw: W threads each create and start a sandbox (the pause image, its own network and shareable IPC) and an
app container joined to it, for N pods. Queues: N busybox pods applied at once through ``pods.desired``
(MetaManager + pod_add), run by `edgeworkers worker --processes 1 --threads W`. Prints pods/s for both,
their ratio (queues / raw; target >= 0.8) and the p50/p99 latency from enqueue to a running app container.
The two paths alternate over the rounds, each going first in turn.

It uses a free database of the Redis at --redis-url (default: the test Redis), its own node label, and removes
every container, worker and key it made.
"""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import redis
import typer
from benchkit import claim_database, remove_containers

from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.desired import apply_pod, delete_pod
from edgeworkers.runtime import labels
from edgeworkers.tasks import sender


@dataclass
class Result:
    name: str
    pods: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.pods / self.seconds

    def line(self) -> str:
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return (
            f"{self.name:<7} {self.pods} pods in {self.seconds:6.2f} s = {self.rate:6.2f} pods/s   "
            f"latency p50 {cuts[49]:.2f} s  p99 {cuts[98]:.2f} s"
        )


class StartWatcher:
    """Records, per pod name, when its app container started (Docker's own event time)."""

    def __init__(self, client: docker.DockerClient, node: str) -> None:
        self.started: dict[str, float] = {}
        self._events = client.api.events(decode=True, filters={"label": f"{labels.NODE}={node}", "event": "start"})
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for event in self._events:
            attributes = event.get("Actor", {}).get("Attributes", {})
            if attributes.get(labels.CONTAINER_TYPE) == labels.TYPE_APP:
                self.started[attributes[labels.POD_NAME]] = event["timeNano"] / 1e9

    def close(self) -> None:
        self._events.close()


def bench_raw(client: docker.DockerClient, node: str, pods: int, workers: int, image: str, sandbox_image: str) -> Result:
    api = client.api

    def one(index: int) -> float:
        name = f"raw-{index}"
        common = {labels.NODE: node, labels.POD_NAME: name, labels.POD_NAMESPACE: "default", labels.POD_UID: name}
        sandbox = api.create_container(
            sandbox_image,
            name=f"{node}-{name}-pod",
            hostname=name,
            labels={**common, labels.CONTAINER_NAME: labels.SANDBOX_NAME, labels.CONTAINER_TYPE: labels.TYPE_SANDBOX},
            host_config=api.create_host_config(ipc_mode="shareable"),
        )["Id"]
        api.start(sandbox)
        joined = f"container:{sandbox}"
        app = api.create_container(
            image,
            command=["sleep", "3600"],
            name=f"{node}-{name}-app",
            labels={**common, labels.CONTAINER_NAME: "app", labels.CONTAINER_TYPE: labels.TYPE_APP},
            host_config=api.create_host_config(network_mode=joined, ipc_mode=joined),
        )["Id"]
        api.start(app)
        return time.time()

    begin = time.time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(one, range(pods)))
    return Result("raw", pods, max(done) - begin, [t - begin for t in done])


def start_worker(settings: Settings, workers: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "EDGEWORKERS_NODE_NAME": settings.node_name,
        "EDGEWORKERS_REDIS_URL": settings.redis_url,
        "EDGEWORKERS_DATA_DIR": str(settings.data_dir),
    }
    argv = [str(Path(sys.executable).with_name("edgeworkers")), "worker", "--processes", "1", "--threads", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def busybox_pod(name: str, image: str) -> dict:
    container = {"name": "app", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
    return {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]}}


class QueuePath:
    """The agent's path: an `edgeworkers worker`, fed through ``pods.desired``."""

    def __init__(self, client: docker.DockerClient, settings: Settings, workers: int, image: str) -> None:
        self.client, self.settings, self.image = client, settings, image
        self.store = MetaStore(redis.Redis.from_url(settings.redis_url))
        self.send = sender(make_broker(settings))
        self.watcher = StartWatcher(client, settings.node_name)
        self.worker = start_worker(settings, workers, settings.data_dir / "worker.log")
        # Warm up: the worker process is up and has built its runtime before any clock starts.
        self._apply("warmup")
        wait_until(lambda: "warmup" in self.watcher.started, 60, "the warm-up pod")

    def _apply(self, name: str) -> None:
        apply_pod(self.store, self.send, busybox_pod(name, self.image))

    def run(self, prefix: str, pods: int) -> Result:
        names = [f"{prefix}-{index}" for index in range(pods)]
        enqueued: dict[str, float] = {}
        begin = time.time()
        for name in names:
            enqueued[name] = time.time()
            self._apply(name)
        started = self.watcher.started
        wait_until(lambda: all(name in started for name in names), 600, f"{pods} pods running")
        return Result("queues", pods, max(started[n] for n in names) - begin, [started[n] - enqueued[n] for n in names])

    def delete_all(self, prefix: str) -> None:
        """Delete the round's pods through the queues too (untimed) and wait until their containers are gone."""
        for key in [k for k in self.store.keys(POD) if k.startswith(f"default/{prefix}-")]:
            delete_pod(self.store, self.send, key)
        node = f"{labels.NODE}={self.settings.node_name}"
        wait_until(
            lambda: not any(
                c["Labels"].get(labels.POD_NAME, "").startswith(f"{prefix}-")
                for c in self.client.api.containers(all=True, filters={"label": node})
            ),
            300,
            "the round's pods deleted",
        )

    def close(self) -> None:
        self.watcher.close()
        os.killpg(self.worker.pid, signal.SIGTERM)
        try:
            self.worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait()


def total(name: str, results: list[Result]) -> Result:
    return Result(
        name, sum(r.pods for r in results), sum(r.seconds for r in results), [x for r in results for x in r.latencies]
    )


def main(
    pods: int = typer.Option(50, help="Pods to start on each path, per round."),
    workers: int = typer.Option(4, help="Worker threads (queues) and threads making raw calls."),
    rounds: int = typer.Option(4, help="Rounds; each path goes first in turn (a busy machine skews one round)."),
    redis_url: str = typer.Option("redis://127.0.0.1:6399", help="A Redis server; a free database is claimed."),
    image: str = typer.Option("busybox", help="The app container's image (local)."),
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="edgeworkers-bench-"))
    base = Settings(node_name=f"bench-{uuid.uuid4().hex[:8]}", data_dir=data_dir)
    raw_node = f"{base.node_name}-raw"
    client = docker.from_env()
    db_url = claim_database(redis_url)
    settings = base.model_copy(update={"redis_url": db_url})
    raws: list[Result] = []
    queued: list[Result] = []
    queues = None
    try:
        queues = QueuePath(client, settings, workers, image)
        for round_ in range(rounds):
            for path in ("raw", "queues") if round_ % 2 == 0 else ("queues", "raw"):  # each goes first in turn
                if path == "raw":
                    raws.append(bench_raw(client, raw_node, pods, workers, image, settings.sandbox_image))
                    remove_containers(client, raw_node)
                else:
                    queued.append(queues.run(f"r{round_}", pods))
                    queues.delete_all(f"r{round_}")
            print(f"round {round_}: raw {raws[-1].rate:.2f} pods/s, queues {queued[-1].rate:.2f} pods/s", flush=True)
    finally:
        if queues is not None:
            queues.close()
        remove_containers(client, raw_node)
        remove_containers(client, base.node_name)
        redis.Redis.from_url(db_url).flushdb()
        shutil.rmtree(data_dir)
    raw, queue = total("raw", raws), total("queues", queued)
    print(f"pods={pods} x {rounds} rounds, workers={workers} (docker {client.version()['Version']}, {os.cpu_count()} CPUs)")
    print(raw.line())
    print(queue.line())
    print(f"ratio   queues/raw = {queue.rate / raw.rate:.2f} (target >= 0.8)")


if __name__ == "__main__":
    typer.run(main)
