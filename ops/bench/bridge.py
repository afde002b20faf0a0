#!/usr/bin/env python3
"""Benchmark of the closed loop (cloud -> bridge -> Redis -> worker -> Docker -> outbox -> cloud), in one run.

It starts its own `edgeworkers cloud serve` (temp data dir, free port), `edgeworkers node serve` (the bridge) and
`edgeworkers worker --processes P --threads T` for a node name of its own, on a free database of the Redis at
--redis-url, and measures:

  (i)   MetaClient.get_configmap: a hit (the configmap in MetaManager, real Redis) and a miss (MetaManager empty:
        the remote query, a GET answered by the real cloud, then stored), p50/p99. Run before the bridge starts, so
        its config refresher (which drops configmaps no pod uses) does not turn hits into misses. Target: hit p99
        under 2 ms.
  (ii)  N busybox pods from `kubectl apply -f` of one manifest (N YAML documents) to all Running and ready in the
        cloud's pod list (scheduler, bridge watch, MetaManager, pod_add, Docker, status outbox, uplink), beside the
        same N pods through `edgeworkers pod apply -f` (node-local) to all Running in MetaManager's statuses, with
        the same worker. The two paths alternate over --rounds, each going first in turn; per pod, the latency from
        the start of the apply command to the first poll that saw it Running. Target: cloud / node-local time
        within 1.2x.
  (iii) PSS and RSS (psutil memory_full_info) of the bridge and of every edge process (bridge, the dramatiq master
        and its worker processes) while the N cloud pods run.

    .venv/bin/python ops/bench/bridge.py --pods 100 --rounds 2 --lookups 2000

Everything it made (containers, processes, Redis keys, temp dir) is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchkit
import docker
import psutil
import redis
import yaml
from benchkit import claim_database, free_port, mb, print_command, teardown

from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiClient, ApiError, CloudUnavailable, load_kubeconfig
from edgeworkers.metamanager.client import MetaClient
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.remote import CloudRemote
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.desired import delete_pod, static_pod_name
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime import labels
from edgeworkers.status.manager import StatusManager
from edgeworkers.tasks import sender

EDGEWORKERS = str(Path(sys.executable).with_name("edgeworkers"))
# The scheduler process (PLEG, probes, GC) arrives with its own issue: the bench runs it once it exists.
NAMESPACE = "default"
POLL_S = 0.1
TIMEOUT_S = 600.0


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    return benchkit.wait_until(condition, timeout_s, what, POLL_S)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def busybox_pod(name: str, labels_: dict[str, str]) -> dict[str, Any]:
    container = {"name": "app", "image": "busybox", "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels_},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]}}


def running(status: dict[str, Any] | None) -> bool:
    containers = (status or {}).get("containerStatuses") or []
    return (status or {}).get("phase") == "Running" and bool(containers) and all(c.get("ready") for c in containers)


class Edge:
    """The cloud, the bridge and the worker, each its own process (group), with their logs under ``root``."""

    def __init__(self, root: Path, redis_url: str, processes: int, threads: int) -> None:
        self.root = root
        self.node = f"bench-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        cloud_data = root / "cloud"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWORKERS_") and k != "KUBECONFIG"}
        self.env.update({
            "HOME": str(root), "PYTHONUNBUFFERED": "1",
            "EDGEWORKERS_CLOUD_HOST": "127.0.0.1", "EDGEWORKERS_CLOUD_PORT": str(self.port),
            "EDGEWORKERS_CLOUD_DATA_DIR": str(cloud_data),
            "EDGEWORKERS_NODE_NAME": self.node, "EDGEWORKERS_NODE_PORT": str(free_port()),
            "EDGEWORKERS_REDIS_URL": redis_url, "EDGEWORKERS_DATA_DIR": str(root / "node"),
            # The scheduler's: no metrics port, and image GC off (the machine's images are not the bench's).
            "EDGEWORKERS_METRICS_PORT": "0", "EDGEWORKERS_IMAGE_GC_HIGH_THRESHOLD_PERCENT": "100",
        })
        self.settings = Settings(node_name=self.node, redis_url=redis_url, data_dir=root / "node",
                                 cloud_host="127.0.0.1", cloud_port=self.port, cloud_data_dir=cloud_data)
        self.processes, self.threads = processes, threads
        self.bridge: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.scheduler: subprocess.Popen | None = None
        self.api: ApiClient | None = None
        self.cloud = self._start("cloud", [EDGEWORKERS, "cloud", "serve"])
        try:
            wait_until(lambda: (cloud_data / "token").exists() or self._check(self.cloud, "cloud"), 30,
                       "the cloud's token")
            self.kubeconfig = root / "kubeconfig"
            self.kubeconfig.write_text(self.run([EDGEWORKERS, "kubeconfig"]).stdout)
            self.api = ApiClient(load_kubeconfig(self.kubeconfig.read_text()))
            wait_until(self._serving, 30, "the cloud to serve")
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        with (self.root / f"{name}.log").open("ab") as out:
            return subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _check(self, process: subprocess.Popen, name: str) -> bool:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}; see {self.root / f'{name}.log'}")
        return False

    def _serving(self) -> bool:
        self._check(self.cloud, "cloud")
        try:
            self.api.get("/version")
            return True
        except (ApiError, CloudUnavailable):
            return False

    def start_loop(self) -> None:
        """The worker, the scheduler, then the bridge; return once the node is Ready at the cloud
        and the worker is ready."""
        self.worker = self._start("worker", [EDGEWORKERS, "worker", "--processes", str(self.processes),
                                             "--threads", str(self.threads)])
        self.scheduler = self._start("scheduler", [EDGEWORKERS, "scheduler"])
        self.bridge = self._start("bridge", [EDGEWORKERS, "node", "serve"])

        def ready() -> bool:
            self._check(self.worker, "worker")
            self._check(self.bridge, "bridge")
            log = (self.root / "worker.log").read_text(errors="replace")
            try:
                node = self.api.get(f"/api/v1/nodes/{self.node}")
            except (ApiError, CloudUnavailable):
                return False
            conditions = (node.get("status") or {}).get("conditions") or []
            node_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            return node_ready and log.count("Worker process is ready for action.") >= self.processes

        wait_until(ready, 60, "the node to register and the worker to be ready")

    def run(self, argv: list[str], input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(argv, env=self.env, input=input, capture_output=True, text=True, timeout=300,
                                check=False)
        if result.returncode != 0:
            raise SystemExit(f"{shlex.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(["kubectl", f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.root / 'kube-cache'}",
                         *args], input)

    def edge_processes(self) -> tuple[subprocess.Popen | None, ...]:
        """The edge's processes, in the order they stop (the bridge first: no new tasks)."""
        return (self.bridge, self.scheduler, self.worker)

    def stop(self) -> None:
        for process in (*self.edge_processes(), self.cloud):
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.api is not None:
            self.api.close()


# --- (i) MetaClient --------------------------------------------------------------------------------


def bench_metaclient(edge: Edge, client: redis.Redis, misses: int, lookups: int) -> tuple[list[float], list[float]]:
    """Seconds per get_configmap with the node's own identity (as a worker asks): ``misses`` misses (each a distinct
    configmap, fetched and stored), then ``lookups`` hits over the same configmaps. The cloud lets a node read only
    the configmaps its pods reference, so one pod bound to the node references them all (deleted after, before the
    bridge ever sees it)."""
    edge.run([EDGEWORKERS, "cloud", "issue-node-credentials", edge.node])
    names = [f"bench-cm-{i:04d}" for i in range(misses + 1)]
    for name in names:
        edge.api.post(f"/api/v1/namespaces/{NAMESPACE}/configmaps",
                      {"metadata": {"name": name}, "data": {"greeting": "hello", "index": name}})
    user = busybox_pod("bench-cm-user", {"bench": "metaclient"})
    user["spec"]["nodeName"] = edge.node
    user["spec"]["containers"][0]["env"] = [
        {"name": f"CM_{i}", "valueFrom": {"configMapKeyRef": {"name": name, "key": "greeting", "optional": True}}}
        for i, name in enumerate(names)
    ]
    edge.api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", user)
    remote = CloudRemote(edge.settings)
    meta = MetaClient(MetaStore(client), Outbox(client), remote)
    remote("configmap", NAMESPACE, names[-1])  # warm-up (untimed): the remote's client and its TLS connection
    miss_s = []
    for name in names[:-1]:
        started = time.perf_counter()
        meta.get_configmap(NAMESPACE, name)
        miss_s.append(time.perf_counter() - started)
    hit_s = []
    for i in range(lookups):
        name = names[i % misses]
        started = time.perf_counter()
        meta.get_configmap(NAMESPACE, name)
        hit_s.append(time.perf_counter() - started)
    edge.api.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/bench-cm-user", {"gracePeriodSeconds": 0})
    for name in names:
        edge.api.delete(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}")
        MetaStore(client).delete("configmap", NAMESPACE, name)
    return miss_s, hit_s


# --- (ii) pods -------------------------------------------------------------------------------------


@dataclass
class Result:
    path: str
    pods: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        return (f"{self.path:<11} {self.pods:>5} {self.seconds:>8.2f} {self.pods / self.seconds:>7.2f} "
                f"{statistics.median(self.latencies):>7.2f} {quantile(self.latencies, 99):>7.2f}")


def watch_running(names: list[str], statuses: Callable[[], dict[str, dict[str, Any] | None]], begin: float
                  ) -> dict[str, float]:
    """Poll ``statuses`` until every pod of ``names`` is Running; seconds from ``begin`` to each first seen so."""
    seen: dict[str, float] = {}

    def all_running() -> bool:
        now = time.perf_counter()
        for name, status in statuses().items():
            if name not in seen and running(status):
                seen[name] = now - begin
        return len(seen) == len(names)

    wait_until(all_running, TIMEOUT_S, f"{len(names)} pods Running")
    return seen


def cloud_round(edge: Edge, tag: str, pods: int, on_running: Callable[[], None] | None = None) -> Result:
    names = [f"{tag}-{i:03d}" for i in range(pods)]
    text = yaml.safe_dump_all([busybox_pod(name, {"bench": tag}) for name in names])

    def statuses() -> dict[str, dict[str, Any] | None]:
        listed = edge.api.list(f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": f"bench={tag}"})
        return {pod["metadata"]["name"]: pod.get("status") for pod in listed.get("items") or []}

    begin = time.perf_counter()
    edge.kubectl("apply", "-f", "-", input=text)
    seen = watch_running(names, statuses, begin)
    rows = edge.kubectl("get", "pods", "-l", f"bench={tag}", "--no-headers").stdout.splitlines()
    if len(rows) != pods or not all(row.split()[1:3] == ["1/1", "Running"] for row in rows):
        raise SystemExit(f"kubectl get pods does not show {pods} pods 1/1 Running")
    if on_running is not None:
        on_running()
    edge.kubectl("delete", "pods", "-l", f"bench={tag}", "--wait=false")
    return Result("cloud", pods, max(seen.values()), list(seen.values()))


def local_round(edge: Edge, store: MetaStore, tag: str, pods: int) -> Result:
    names = [f"{tag}-{i:03d}" for i in range(pods)]
    manifest = edge.root / f"{tag}.yaml"
    manifest.write_text(yaml.safe_dump_all([busybox_pod(name, {"bench": tag}) for name in names]))
    keys = {name: f"{NAMESPACE}/{static_pod_name(name, edge.node)}" for name in names}

    def statuses() -> dict[str, dict[str, Any] | None]:
        return {name: StatusManager(store, Outbox(store.redis)).get(key) for name, key in keys.items()}

    begin = time.perf_counter()
    edge.run([EDGEWORKERS, "pod", "apply", "-f", str(manifest)])
    seen = watch_running(names, statuses, begin)
    send = sender(make_broker(edge.settings, redis_client(edge.settings)))
    for key in keys.values():
        delete_pod(store, send, key)
    return Result("node-local", pods, max(seen.values()), list(seen.values()))


def wait_cleared(edge: Edge, client: docker.DockerClient, store: MetaStore, tag: str) -> None:
    """Untimed: the round's pods gone from Docker, MetaManager and the cloud (mirror pods included)."""

    def cleared() -> bool:
        containers = client.api.containers(all=True, filters={"label": f"{labels.NODE}={edge.node}"})
        if any(c["Labels"].get(labels.POD_NAME, "").startswith(f"{tag}-") for c in containers):
            return False
        if any(key.split("/", 1)[1].startswith(f"{tag}-") for key in store.keys(POD)):
            return False
        listed = edge.api.list(f"/api/v1/namespaces/{NAMESPACE}/pods")
        return not any(p["metadata"]["name"].startswith(f"{tag}-") for p in listed.get("items") or [])

    wait_until(cleared, TIMEOUT_S, f"the pods of {tag} deleted")


# --- (iii) memory ----------------------------------------------------------------------------------


@dataclass
class Memory:
    name: str
    pss: int
    rss: int


def memory(edge: Edge) -> list[Memory]:
    """PSS and RSS of the bridge, the dramatiq master, each of its worker processes, and the scheduler."""

    def of(name: str, process: psutil.Process) -> Memory:
        info = process.memory_full_info()
        return Memory(name, info.pss, info.rss)

    master = psutil.Process(edge.worker.pid)
    rows = [of("bridge (edgeworkers node serve)", psutil.Process(edge.bridge.pid)),
            of("dramatiq master (edgeworkers worker)", master)]
    rows += [of(f"dramatiq worker process {child.pid}", child) for child in master.children(recursive=True)]
    if edge.scheduler is not None:
        rows.append(of("scheduler (edgeworkers scheduler)", psutil.Process(edge.scheduler.pid)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=100, help="pods per path and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each path goes first in turn")
    parser.add_argument("--misses", type=int, default=200, help="MetaClient misses (distinct configmaps)")
    parser.add_argument("--lookups", type=int, default=2000, help="MetaClient hits")
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6399", help="a Redis server; a free db is claimed")
    args = parser.parse_args()
    if not shutil.which("kubectl"):
        raise SystemExit("kubectl is not on PATH")

    root = Path(tempfile.mkdtemp(prefix="edgeworkers-bench-bridge-"))
    db_url = claim_database(args.redis_url)
    client = redis.Redis.from_url(db_url)
    store = MetaStore(client)
    docker_client = docker.from_env()
    results: dict[str, list[Result]] = {"cloud": [], "node-local": []}
    memories: list[Memory] = []
    edge = None
    try:
        edge = Edge(root, db_url, args.processes, args.threads)
        miss_s, hit_s = bench_metaclient(edge, client, args.misses, args.lookups)
        edge.start_loop()
        for round_ in range(args.rounds):
            for path in ("cloud", "node-local") if round_ % 2 == 0 else ("node-local", "cloud"):
                tag = f"r{round_}-{'c' if path == 'cloud' else 'l'}"
                if path == "cloud":
                    on_running = (lambda: memories.extend(memory(edge))) if not memories else None
                    results[path].append(cloud_round(edge, tag, args.pods, on_running))
                else:
                    results[path].append(local_round(edge, store, tag, args.pods))
                wait_cleared(edge, docker_client, store, tag)
            print(f"round {round_}: cloud {results['cloud'][-1].seconds:.2f} s, "
                  f"node-local {results['node-local'][-1].seconds:.2f} s", flush=True)
    finally:
        teardown(edge, docker_client, client, root)

    load = print_command()
    print(f"docker {docker_client.version()['Version']}, {os.cpu_count()} CPUs, load average now {load}; "
          f"worker {args.processes} process(es) x {args.threads} threads")

    print(f"\n(i) MetaClient.get_configmap     {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, samples in (("hit (MetaManager in Redis)", hit_s), ("miss (GET from the cloud, stored)", miss_s)):
        print(f"{name:<33} {len(samples):>5} {statistics.median(samples) * 1e3:>8.2f} "
              f"{quantile(samples, 99) * 1e3:>8.2f} {max(samples) * 1e3:>8.2f}")
    hit_p99 = quantile(hit_s, 99) * 1e3
    print(f"target hit p99 < 2 ms: {'met' if hit_p99 < 2 else 'MISSED'} ({hit_p99:.2f} ms); "
          f"miss/hit p50 = {statistics.median(miss_s) / statistics.median(hit_s):.0f}x")

    print(f"\n(ii) {args.pods} pods to Running   {'pods':>5} {'seconds':>8} {'pods/s':>7} {'p50 s':>7} {'p99 s':>7}")
    for path, rounds in results.items():
        for index, result in enumerate(rounds):
            print(f"  round {index} {result.line()}")
    totals = {path: sum(r.seconds for r in rounds) for path, rounds in results.items()}
    for path, rounds in results.items():
        latencies = [x for r in rounds for x in r.latencies]
        print(f"  all     {Result(path, sum(r.pods for r in rounds), totals[path], latencies).line()}")
    ratio = totals["cloud"] / totals["node-local"]
    per_round = ", ".join(f"{c.seconds / n.seconds:.2f}" for c, n in zip(results["cloud"], results["node-local"]))
    print(f"ratio cloud/node-local = {ratio:.2f} (per round {per_round}; target <= 1.2: "
          f"{'met' if ratio <= 1.2 else 'MISSED'})")

    print(f"\n(iii) memory with {args.pods} cloud pods running   {'PSS MB':>8} {'RSS MB':>8}")
    for row in memories:
        print(f"  {row.name:<42} {mb(row.pss):>8} {mb(row.rss):>8}")
    print(f"  {'all edge processes':<42} {mb(sum(r.pss for r in memories)):>8} {mb(sum(r.rss for r in memories)):>8}")


if __name__ == "__main__":
    main()
