"""Task -> running for a pod with volumes (one configMap, one secret on tmpfs, one emptyDir, env from both) beside
the same pod without volumes, through the agent's queues, in one run.

    .venv/bin/python ops/bench/volumes.py --pods 20 --workers 4 --rounds 4

Each round applies N pods of one kind at once through ``pods.desired`` (MetaManager + pod_add), run by `edgeworkers
worker --processes 1 --threads W`, and records from enqueue to the app container's start (Docker's event time); the
kinds alternate, each going first in turn. The configmap and secret are stored in MetaManager first (the secret
encrypted with the node's key, as the bridge leaves them), so no cloud is needed. Prints p50/p99 for both, the ratio
of the p50s (target under 1.3) and the worker's memory (RSS of its process group) at the end.

Run as root (the secret volume is a tmpfs). It uses a free database of the Redis at --redis-url (default: the test
Redis), its own node label, and removes every container, mount, worker and key it made.
"""
from __future__ import annotations

import base64
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import benchkit
import docker
import psutil
import redis
import typer

from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager.crypto import node_cipher
from edgeworkers.metamanager.store import CONFIGMAP, POD, SECRET, MetaStore
from edgeworkers.pods.desired import apply_pod, delete_pod
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime import labels
from edgeworkers.tasks import sender
from edgeworkers.volumes.mounter import HostMounter


def plain_pod(name: str, image: str) -> dict:
    container = {"name": "app", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
    return {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]}}


def volume_pod(name: str, image: str) -> dict:
    pod = plain_pod(name, image)
    app = pod["spec"]["containers"][0]
    app["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"}, {"name": "creds", "mountPath": "/creds"},
                           {"name": "scratch", "mountPath": "/scratch"}]
    app["env"] = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "bench-creds", "key": "password"}}}]
    app["envFrom"] = [{"configMapRef": {"name": "bench-config"}}]
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "bench-config"}},
                              {"name": "creds", "secret": {"secretName": "bench-creds"}},
                              {"name": "scratch", "emptyDir": {}}]
    return pod


def quantiles(latencies: list[float]) -> tuple[float, float]:
    if len(latencies) < 2:
        return latencies[0], latencies[0]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[98]


def worker_rss(worker_pid: int) -> int:
    """Bytes of resident memory of the worker's process group (the dramatiq master and its worker process)."""
    total = 0
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == worker_pid:
                total += process.memory_info().rss
        except (psutil.Error, ProcessLookupError):
            continue
    return total


def main(
    pods: int = typer.Option(20, help="Pods of each kind per round."),
    workers: int = typer.Option(4, help="Worker threads."),
    rounds: int = typer.Option(4, help="Rounds; each kind goes first in turn."),
    redis_url: str = typer.Option("redis://127.0.0.1:6399", help="A Redis server; a free database is claimed."),
    image: str = typer.Option("busybox", help="The app container's image (local)."),
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="edgeworkers-bench-volumes-"))
    node = f"bench-{uuid.uuid4().hex[:8]}"
    client = docker.from_env()
    db_url = benchkit.claim_database(redis_url)
    settings = Settings(node_name=node, data_dir=data_dir, redis_url=db_url)
    store = MetaStore(redis.Redis.from_url(db_url), node_cipher(data_dir))
    store.put(CONFIGMAP, {"metadata": {"name": "bench-config", "namespace": "default", "resourceVersion": "1"},
                          "data": {"LOG_LEVEL": "info", "app.conf": "listen 8080\n" * 20}})
    store.put(SECRET, {"metadata": {"name": "bench-creds", "namespace": "default", "resourceVersion": "1"},
                       "data": {"password": base64.b64encode(b"bench-password").decode()}})
    send = sender(make_broker(settings, redis_client(settings)))
    watcher = benchkit.StartWatcher(client, node)
    worker = benchkit.start_worker(settings, workers, data_dir / "worker.log")
    latencies: dict[str, list[float]] = {"plain": [], "volumes": []}
    try:
        apply_pod(store, send, volume_pod("warmup", image))
        benchkit.wait_until(lambda: "warmup" in watcher.started, 60, "the warm-up pod")
        for round_ in range(rounds):
            for kind in ("plain", "volumes") if round_ % 2 == 0 else ("volumes", "plain"):
                make = plain_pod if kind == "plain" else volume_pod
                names = [f"{kind}-{round_}-{i}" for i in range(pods)]
                enqueued = {}
                for name in names:
                    enqueued[name] = time.time()
                    apply_pod(store, send, make(name, image))
                benchkit.wait_until(lambda: all(n in watcher.started for n in names), 600, f"{kind} pods running")
                latencies[kind] += [watcher.started[n] - enqueued[n] for n in names]
                for name in names:
                    delete_pod(store, send, f"default/{name}")
                benchkit.wait_until(lambda: not any(
                    c["Labels"].get(labels.POD_NAME) in names
                    for c in client.api.containers(all=True, filters={"label": f"{labels.NODE}={node}"})
                ) and not any(store.get(POD, "default", n) for n in names), 300, "the round's pods deleted")
            print(f"round {round_}: plain p50 {quantiles(latencies['plain'])[0]:.2f} s, "
                  f"volumes p50 {quantiles(latencies['volumes'])[0]:.2f} s", flush=True)
        rss = worker_rss(worker.pid)
    finally:
        watcher.close()
        benchkit.remove_containers(client, node)
        mounter = HostMounter()
        for point in mounter.mounts_under(data_dir):
            mounter.unmount(point)
        os.killpg(worker.pid, 15)
        worker.wait(30)
        redis.Redis.from_url(db_url).flushdb()
        shutil.rmtree(data_dir)
    plain, volumes = quantiles(latencies["plain"]), quantiles(latencies["volumes"])
    print(f"pods={pods} x {rounds} rounds per kind, workers={workers} (docker {client.version()['Version']}, "
          f"{os.cpu_count()} CPUs)")
    print(f"plain    task -> running p50 {plain[0]:.3f} s  p99 {plain[1]:.3f} s")
    print(f"volumes  task -> running p50 {volumes[0]:.3f} s  p99 {volumes[1]:.3f} s")
    print(f"ratio    volumes/plain p50 = {volumes[0] / plain[0]:.2f} (target < 1.3)")
    print(f"worker   RSS {rss / 2**20:.1f} MiB (process group)")


if __name__ == "__main__":
    typer.run(main)
