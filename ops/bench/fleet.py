#!/usr/bin/env python3
"""How far one cloud goes: the real cloud with many hollow edge nodes, at a few fleet sizes in one run.

For each size (the baseline first, then --steps, then --nodes), apart from the machine's own edgeworkers:

- the cloud: ``edgeworkers cloud serve`` as a process of its own (a fresh temp data dir, a free port: ops/bench/cloud.py's
  ``Server``), so its CPU time and PSS are its own (psutil);
- N hollow nodes (ops/bench/hollow.py, --nodes-per-process of them per process, as kubemark runs hollow kubelets): the
  real bridge and pod worker on a FakeRuntime, each node with its own identity (``issue-node-credentials``, as the
  embedded cloud's nodes get theirs) and its own database of a ``redis-server`` the bench starts (free port, temp dir,
  password file, one database per node), each process starting its nodes evenly over --stagger-s (10 s, the
  heartbeat period: a fleet's heartbeats are not in step); the time until every node is Ready at the cloud is the
  join time;
- the workload, ten pods per node in the default shape: a DaemonSet (one pod per node) and 20 Deployments holding the
  rest (e.g. 200 nodes: 200 + 20 x 90 = 2,000 pods). ``--workload pods`` (the default) creates them as bare pods
  through the API, as their controllers would (the DaemonSet's pinned to their node by node affinity on
  ``metadata.name``, as kube's DaemonSet controller makes them; the Deployments' left to the binder), at --qps (20:
  kube-controller-manager's default client QPS); ``--workload controllers`` creates one apps/v1 DaemonSet and the
  Deployments instead, and the cloud's controllers make the pods (at their shared pace, kube-controller-manager's
  client QPS 20 and burst 30: ``EDGEWORKERS_CONTROLLER_API_QPS``/``_BURST``);
- then, once all are Running, --latency-pods (50) created one at a time at --latency-qps (5/s) into the saturated
  fleet, as clusterloader2's density test does (its 5 s startup SLO is judged on those; the burst's saturation pods
  measure throughput): bare pods, or with controllers a Deployment of one replica each;
- measured: the time from the first create until every pod is Running at the cloud; each pod's startup latency, from
  its create (bare pods: the request sent; controllers: its ADDED event on the bench's watch) to the bench's watch
  seeing it Running (kube's SLI: creation to Running observed by a watch), split at the watch first seeing it bound to
  a node (before: the controllers and the binder; after: the node and its status uplink), and the latency pods'
  apart; the latency of every API call by verb while the pods start, timed by the cloud (ops/bench/cloudtimer.py) and
  by the clients (the hollow nodes' and the bench's); the cloud's CPU seconds (joining, starting the pods) and its
  share of a core in the steady state after (--steady-s: heartbeats and leases alone), its PSS at the end; the hollow
  processes' CPU seconds (they share the 2 cores with the cloud).

Beside Kubernetes' SLOs: API call latency p99 <= 1 s for single-object calls (get, create, update, patch, delete),
pod startup p99 <= 5 s. Every figure of a size is also given as a ratio to the baseline's, measured in the same run.

    .venv/bin/python ops/bench/fleet.py --nodes 200 --pods 2000 --baseline 20 --steps 50,100
    .venv/bin/python ops/bench/fleet.py --workload controllers --nodes 200 --pods 2000 --baseline 20 --steps 100
    .venv/bin/python ops/bench/fleet.py --nodes 5 --pods 20 --baseline 0 --stagger-s 1 --steady-s 2  # smoke run
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
from benchkit import free_port, mb, print_command, redis_daemon, wait_until
from cloud import Server
from cloudtimer import PROFILE_ENV, SAMPLES_ENV
from hollow import Sample, TimedApiClient

from edgeworkers.cloud.tls import issue_node_credentials
from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiClient, ApiError, CloudUnavailable, WatchExpired, load_kubeconfig
from edgeworkers.redisconn import redis_client

HOLLOW = Path(__file__).with_name("hollow.py")
CLOUD_TIMER = Path(__file__).with_name("cloudtimer.py")
NAMESPACE = "default"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
LABEL = "fleet-bench"
SELECTOR = f"{LABEL}=yes"
DAEMONSET = "agent"
SLO_API_S = 1.0  # kube's: p99 of single-object API calls
SLO_STARTUP_S = 5.0  # kube's: p99 of pod startup
SINGLE_OBJECT_VERBS = ("get", "create", "update", "patch", "delete")
POLL_S = 0.5


@dataclass(frozen=True)
class Size:
    nodes: int
    pods: int

    @property
    def names(self) -> list[str]:
        return [f"hollow-{i:03d}" for i in range(self.nodes)]


def deployment_replicas(size: Size, deployments: int) -> list[int]:
    """The replicas of each Deployment: the pods the DaemonSet does not hold, spread evenly (none empty)."""
    rest = size.pods - size.nodes
    count = min(deployments, rest)
    return [rest // count + (i < rest % count) for i in range(count)] if count else []


def container() -> dict[str, Any]:
    return {"name": "app", "image": "busybox", "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}


def template(app: str) -> dict[str, Any]:
    return {"metadata": {"labels": {LABEL: "yes", "app": app}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [container()]}}


def bare_pods(size: Size, deployments: int) -> list[dict[str, Any]]:
    """The pods the DaemonSet and the Deployments would make: the DaemonSet's pinned to their node by node affinity
    (kube's DaemonSet controller's way since 1.12), the Deployments' left to the binder."""
    pods = []
    for node in size.names:
        pod = template(DAEMONSET)
        pod["metadata"]["name"] = f"{DAEMONSET}-{node}"
        pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}
        pods.append(pod)
    for index, replicas in enumerate(deployment_replicas(size, deployments)):
        for replica in range(replicas):
            pod = template(f"web-{index:02d}")
            pod["metadata"]["name"] = f"web-{index:02d}-{replica:04d}"
            pods.append(pod)
    return pods


def controller_objects(size: Size, deployments: int) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object): one apps/v1 DaemonSet and the Deployments."""
    apps = f"/apis/apps/v1/namespaces/{NAMESPACE}"
    objects = [(f"{apps}/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": DAEMONSET},
        "spec": {"selector": {"matchLabels": {"app": DAEMONSET}}, "template": template(DAEMONSET)}})]
    for index, replicas in enumerate(deployment_replicas(size, deployments)):
        name = f"web-{index:02d}"
        objects.append((f"{apps}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name)}}))
    return objects


def latency_objects(workload: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object): the latency pods, each a bare pod or a Deployment of one replica (clusterloader2's
    latency Deployments), named ``latency-NNN``."""
    objects = []
    for index in range(count):
        name = f"latency-{index:03d}"
        if workload == "pods":
            pod = template(name)
            pod["metadata"]["name"] = name
            objects.append((PODS, pod))
        else:
            objects.append((f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template(name)}}))
    return objects


class PodWatch:
    """The bench's list and watch of the bench's pods: when each was first seen, first seen bound to a node, and first
    seen Running."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.added: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.stopped = threading.Event()
        self.listed = threading.Event()
        self.error = ""
        self.thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)
        self.thread.start()

    def _see(self, obj: dict[str, Any]) -> None:
        now = time.time()
        name = obj["metadata"]["name"]
        self.added.setdefault(name, now)
        if (obj.get("spec") or {}).get("nodeName"):
            self.bound.setdefault(name, now)
        if (obj.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(name, now)

    def _run(self) -> None:
        params = {"labelSelector": SELECTOR}
        version = ""
        while not self.stopped.is_set():
            try:
                if not version:
                    listed = self.api.list(PODS, params)
                    for obj in listed.get("items") or []:
                        self._see(obj)
                    version = listed["metadata"]["resourceVersion"]
                    self.listed.set()
                for kind, obj in self.api.watch(PODS, {**params, "resourceVersion": version}):
                    version = obj["metadata"]["resourceVersion"]
                    if kind in ("ADDED", "MODIFIED"):
                        self._see(obj)
            except WatchExpired:
                version = ""
            except (CloudUnavailable, ApiError) as exc:
                if self.stopped.is_set():
                    return
                self.error = str(exc)
                time.sleep(POLL_S)

    def stop(self) -> None:
        self.stopped.set()
        self.api.close()


def creation(watch: PodWatch, sent: dict[str, float], names: list[str]) -> dict[str, float]:
    """When each pod was created: the request sent (bare pods), else its ADDED event on the bench's watch."""
    return {name: min(sent.get(name, watch.added[name]), watch.added[name]) for name in names}


class Hollows:
    """The hollow nodes' processes, --nodes-per-process nodes each, on the bench's Redis (a database per node)."""

    def __init__(self, root: Path, size: Size, per_process: int, redis_port: int, password_file: Path,
                 server: Server, threads: int, stagger_s: float) -> None:
        self.root = root
        self.processes: list[tuple[subprocess.Popen, Path, Path]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWORKERS_")}
        names = size.names
        for start in range(0, len(names), per_process):
            index = start // per_process
            samples, log = root / f"hollow-{index}.samples", root / f"hollow-{index}.log"
            argv = [sys.executable, str(HOLLOW), "--redis-url", f"redis://127.0.0.1:{redis_port}",
                    "--password-file", str(password_file), "--cloud-data-dir", str(server.root / "data"),
                    "--cloud-port", str(server.port), "--data-root", str(root / "nodes"), "--threads", str(threads),
                    "--samples", str(samples), "--stagger-s", str(stagger_s),
                    *(f"{name}:{start + offset + 1}" for offset, name in enumerate(names[start:start + per_process]))]
            with log.open("wb") as out:
                process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self.processes.append((process, samples, log))

    def check(self) -> None:
        for process, _samples, log in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"a hollow process exited with {process.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")

    def cpu_s(self) -> float:
        total = 0.0
        for process, _samples, _log in self.processes:
            try:
                times = psutil.Process(process.pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> list[Sample]:
        """SIGTERM each process (SIGKILL after 60 s); the API call samples they wrote."""
        for process, _samples, _log in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        samples: list[Sample] = []
        for process, path, _log in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if path.exists():
                samples += [tuple(orjson.loads(line)) for line in path.read_bytes().splitlines()]
        return samples


@dataclass
class Outcome:
    """One size's figures."""

    size: Size
    join_s: float = 0.0
    running_s: float = 0.0
    startup: list[float] = field(default_factory=list)
    to_bound: list[float] = field(default_factory=list)  # of startup: created to bound (the controllers and binder)
    to_running: list[float] = field(default_factory=list)  # of startup: bound to Running (the node and the uplink)
    created_s: float = 0.0  # the first create to the last pod's ADDED event
    latency: list[float] = field(default_factory=list)  # the latency pods' startup
    server_calls: list[Sample] = field(default_factory=list)  # timed by the cloud, while the pods started
    client_calls: list[Sample] = field(default_factory=list)  # timed by the hollow nodes and the bench, as well
    cloud_join_cpu_s: float = 0.0
    cloud_pods_cpu_s: float = 0.0
    cloud_steady_share: float = 0.0  # of one core
    cloud_pss: int = 0
    cloud_rss: int = 0
    hollow_cpu_s: float = 0.0
    load: str = ""

    @property
    def cloud_cpu_s(self) -> float:
        return self.cloud_join_cpu_s + self.cloud_pods_cpu_s


def by_verb(calls: list[Sample]) -> dict[str, list[float]]:
    seconds: defaultdict[str, list[float]] = defaultdict(list)
    for verb, _resource, _started, took, _outcome in calls:
        seconds[verb].append(took)
    return dict(seconds)


def worst_single_object(calls: list[Sample]) -> tuple[str, float]:
    """The (verb resource) pair of single-object calls with the highest p99, and that p99 (kube's SLO is per pair)."""
    pairs: defaultdict[str, list[float]] = defaultdict(list)
    for verb, resource, _started, took, _outcome in calls:
        if verb in SINGLE_OBJECT_VERBS:
            pairs[f"{verb} {resource}"].append(took)
    if not pairs:
        return "-", 0.0
    return max(((pair, quantile(values, 99)) for pair, values in pairs.items()), key=lambda item: item[1])


def server_errors(calls: list[Sample]) -> int:
    """Calls the cloud failed (5xx) or throttled (429); a refusal (4xx) is an answer."""
    return sum(outcome.startswith("5") or outcome == "429" for *_rest, outcome in calls)


def quantile(values: list[float], q: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cloud_cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def nodes_ready(api: ApiClient, expected: int) -> bool:
    items = api.list("/api/v1/nodes").get("items") or []
    ready = sum(any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or []) for n in items)
    return ready >= expected


def create_paced(api: TimedApiClient, objects: list[tuple[str, dict[str, Any]]], qps: float,
                 threads: int) -> dict[str, float]:
    """POST each (collection path, object), ``threads`` at a time, the k-th not before k/``qps`` s (0: as fast as
    they go); when each request was sent, by the object's name."""
    begin = time.monotonic()
    sent: dict[str, float] = {}

    def create(indexed: tuple[int, tuple[str, dict[str, Any]]]) -> None:
        index, (path, obj) = indexed
        if qps > 0:
            delay = begin + index / qps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent[obj["metadata"]["name"]] = time.time()
        api.post(path, obj)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(create, enumerate(objects)))
    return sent


def create_controllers(api: TimedApiClient, objects: list[tuple[str, dict[str, Any]]]) -> None:
    for path, obj in objects:
        try:
            api.post(path, obj)
        except ApiError as exc:
            if exc.code == 404:
                raise SystemExit(f"the cloud does not serve {path} (404): its controllers are not there yet; "
                                 "run with --workload pods") from None
            raise


def run_size(size: Size, args: argparse.Namespace, root: Path, redis_port: int, password_file: Path) -> Outcome:
    """One size: a fresh cloud, the hollow nodes joining, the workload to Running, the steady state; then all
    stopped."""
    outcome = Outcome(size)
    root.mkdir()
    cloud_samples = root / "cloud.samples"
    env = {SAMPLES_ENV: str(cloud_samples)}
    if args.profile_cloud:
        env[PROFILE_ENV] = str(args.profile_cloud.resolve() / f"cloud-{size.nodes}.prof")
    server = Server(root, [sys.executable, str(CLOUD_TIMER)], env)
    hollows: Hollows | None = None
    watch: PodWatch | None = None
    bench_calls: list[Sample] = []
    try:
        access = load_kubeconfig(server.kubeconfig.read_text(), base_dir=server.root)
        admin = ApiClient(access)
        cloud = psutil.Process(server.process.pid)
        cloud_settings = Settings(cloud_data_dir=server.root / "data", cloud_port=server.port)
        for name in size.names:  # what `edgeworkers cloud issue-node-credentials NAME` does, without a process each
            issue_node_credentials(cloud_settings, name)
        cpu_before = cloud_cpu_s(cloud)
        joined = time.monotonic()
        hollows = Hollows(root, size, args.nodes_per_process, redis_port, password_file, server, args.threads,
                          args.stagger_s)
        wait_until(lambda: (hollows.check(), nodes_ready(admin, size.nodes))[1], args.timeout_s,
                   f"{size.nodes} nodes Ready", POLL_S)
        outcome.join_s = time.monotonic() - joined
        cpu_joined = cloud_cpu_s(cloud)
        outcome.cloud_join_cpu_s = cpu_joined - cpu_before

        watch = PodWatch(ApiClient(access))
        wait_until(watch.listed.is_set, 30, f"the bench's pod watch (error: {watch.error or 'none'})")
        client = TimedApiClient(access, samples=bench_calls)
        begin = time.time()
        if args.workload == "pods":
            pods = bare_pods(size, args.deployments)
            created = create_paced(client, [(PODS, pod) for pod in pods], args.qps, args.create_threads)
        else:
            create_controllers(client, controller_objects(size, args.deployments))
            created = {}  # a pod's creation is its ADDED event
            wait_until(lambda: watch.added, 30, "a first pod from the DaemonSet and Deployments (does the cloud run "
                       "their controllers? else run with --workload pods)", POLL_S)
        wait_until(lambda: (hollows.check(), len(watch.running) >= size.pods)[1], args.timeout_s,
                   f"{size.pods} pods Running (watch error: {watch.error or 'none'})", POLL_S)
        end = time.time()
        outcome.running_s = end - begin
        first = creation(watch, created, list(watch.running))
        outcome.startup = [watch.running[name] - at for name, at in first.items()]
        outcome.to_bound = [watch.bound[name] - at for name, at in first.items()]
        outcome.to_running = [watch.running[name] - watch.bound[name] for name in first]
        outcome.created_s = max(watch.added.values()) - begin
        cpu_running = cloud_cpu_s(cloud)
        outcome.cloud_pods_cpu_s = cpu_running - cpu_joined

        if args.latency_pods:  # one at a time into the saturated fleet, as clusterloader2's latency pods
            sent = create_paced(client, latency_objects(args.workload, args.latency_pods), args.latency_qps, 1)
            total = size.pods + args.latency_pods
            wait_until(lambda: (hollows.check(), len(watch.running) >= total)[1], args.timeout_s,
                       f"{args.latency_pods} latency pods Running (watch error: {watch.error or 'none'})", POLL_S)
            latency = creation(watch, sent, [name for name in list(watch.running) if name not in first])
            outcome.latency = [watch.running[name] - at for name, at in latency.items()]
            cpu_running = cloud_cpu_s(cloud)
        time.sleep(args.steady_s)
        outcome.cloud_steady_share = (cloud_cpu_s(cloud) - cpu_running) / args.steady_s if args.steady_s else 0.0
        memory = cloud.memory_full_info()
        outcome.cloud_pss, outcome.cloud_rss = memory.pss, memory.rss
        outcome.hollow_cpu_s = hollows.cpu_s()
        outcome.load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        admin.close()
        client.close()
    finally:
        calls = hollows.stop() if hollows is not None else []
        if watch is not None:
            watch.stop()
        server.stop()
    served = [tuple(orjson.loads(line)) for line in cloud_samples.read_bytes().splitlines()]
    outcome.server_calls = [s for s in served if begin <= s[2] <= end]
    outcome.client_calls = [s for s in calls + bench_calls if begin <= s[2] <= end]
    return outcome


def sizes(args: argparse.Namespace) -> list[Size]:
    """The baseline, the steps, then the target, each with the target's pods per node."""
    per_node = args.pods / args.nodes
    counts = ([args.baseline] if args.baseline else []) + [int(n) for n in args.steps.split(",") if n] + [args.nodes]
    return [Size(n, round(n * per_node)) for n in counts]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    load = print_command()
    print(f"{os.cpu_count()} CPUs, load average now {load}; workload {args.workload}"
          f"{f' at {args.qps:g} creates/s' if args.workload == 'pods' and args.qps else ''}; "
          f"{args.nodes_per_process} hollow nodes per process, {args.threads} worker threads each; steady state "
          f"{args.steady_s:g} s")
    base = outcomes[0]
    print(f"\n{'nodes':>5} {'pods':>5} {'join s':>7} {'Running s':>9} {'pods/s':>7} {'start p50':>9} "
          f"{'start p99':>9} {'API p99 ms':>10} {'client':>7} {'cloud CPU s':>11} {'steady':>7} {'PSS MB':>7} "
          f"{'hollow CPU s':>12} {'load':>15}")
    for o in outcomes:
        print(f"{o.size.nodes:>5} {o.size.pods:>5} {o.join_s:>7.1f} {o.running_s:>9.1f} "
              f"{o.size.pods / o.running_s:>7.1f} {quantile(o.startup, 50):>9.2f} {quantile(o.startup, 99):>9.2f} "
              f"{ms(worst_single_object(o.server_calls)[1]):>10} {ms(worst_single_object(o.client_calls)[1]):>7} "
              f"{o.cloud_cpu_s:>11.1f} {o.cloud_steady_share:>6.0%} {mb(o.cloud_pss):>7} {o.hollow_cpu_s:>12.1f} "
              f"{o.load:>15}")
    print("  API p99: the worst single-object (verb, resource) pair, timed by the cloud (client: by the callers);\n"
          "  cloud CPU s: joining and starting the pods; steady: the cloud's share of one core afterwards")

    print("\npod startup split, p50/p99 s: created to bound (the controllers and the binder), bound to Running (the "
          "node's watch, pod sync and status uplink); all created: from the first create to the last pod's ADDED")
    for o in outcomes:
        print(f"  {o.size.nodes} nodes: created to bound {quantile(o.to_bound, 50):.2f}/{quantile(o.to_bound, 99):.2f}"
              f", bound to Running {quantile(o.to_running, 50):.2f}/{quantile(o.to_running, 99):.2f}, all created "
              f"in {o.created_s:.1f} s")
    if args.latency_pods:
        print(f"latency pods ({args.latency_pods} created at {args.latency_qps:g}/s once the workload is Running"
              f"{', each a Deployment of one replica' if args.workload == 'controllers' else ''}), startup p50/p99 s: "
              + ", ".join(f"{o.size.nodes} nodes: {quantile(o.latency, 50):.2f}/{quantile(o.latency, 99):.2f}"
                          for o in outcomes))

    for title, calls_of in (("timed by the cloud", lambda o: o.server_calls),
                            ("timed by the clients (hollow nodes and the bench)", lambda o: o.client_calls)):
        verbs = sorted({verb for o in outcomes for verb in by_verb(calls_of(o))})
        print(f"\nAPI calls while the pods start, {title}: p50/p99 ms (count)")
        print(f"{'verb':<8}" + "".join(f"{f'{o.size.nodes} nodes':>22}" for o in outcomes))
        for verb in verbs:
            cells = []
            for o in outcomes:
                values = by_verb(calls_of(o)).get(verb, [])
                cells.append(f"{ms(quantile(values, 50))}/{ms(quantile(values, 99))} ({len(values)})" if values else "-")
            print(f"{verb:<8}" + "".join(f"{cell:>22}" for cell in cells))
        print("worst single-object (verb, resource) p99: " + "; ".join(
            f"{o.size.nodes} nodes: {pair} {ms(p99)} ms" for o in outcomes
            for pair, p99 in [worst_single_object(calls_of(o))]))
    print("calls the cloud failed (5xx, 429): " + ", ".join(f"{o.size.nodes} nodes: {server_errors(o.server_calls)}"
                                                          for o in outcomes))

    if len(outcomes) > 1:
        print(f"\nratios to the baseline ({base.size.nodes} nodes, {base.size.pods} pods)")
        for o in outcomes[1:]:
            print(f"  {o.size.nodes} nodes ({o.size.nodes / base.size.nodes:g}x): time to Running "
                  f"{ratio(o.running_s, base.running_s)}, startup p99 "
                  f"{ratio(quantile(o.startup, 99), quantile(base.startup, 99))}, API p99 "
                  f"{ratio(worst_single_object(o.server_calls)[1], worst_single_object(base.server_calls)[1])}, "
                  f"cloud CPU {ratio(o.cloud_cpu_s, base.cloud_cpu_s)}, steady CPU "
                  f"{ratio(o.cloud_steady_share, base.cloud_steady_share)}, PSS {ratio(o.cloud_pss, base.cloud_pss)}")

    print(f"\nKubernetes' SLOs: single-object API call p99 <= {SLO_API_S:g} s (timed by the cloud), pod startup p99 <= "
          f"{SLO_STARTUP_S:g} s")
    for o in outcomes:
        api_ok = worst_single_object(o.server_calls)[1] <= SLO_API_S
        verdicts = [f"pod startup {'met' if quantile(o.startup, 99) <= SLO_STARTUP_S else 'MISSED'}"]
        if o.latency:
            verdicts.append(f"latency pods' startup {'met' if quantile(o.latency, 99) <= SLO_STARTUP_S else 'MISSED'}")
        print(f"  {o.size.nodes} nodes, {o.size.pods} pods: API {'met' if api_ok else 'MISSED'}, " + ", ".join(verdicts))


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=200, help="the largest fleet")
    parser.add_argument("--pods", type=int, default=2000, help="its pods (the other sizes get as many per node)")
    parser.add_argument("--baseline", type=int, default=20, help="the baseline's nodes, run first (0: none)")
    parser.add_argument("--steps", default="", help="sizes between, as node counts: 50,100")
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--workload", choices=("pods", "controllers"), default="pods",
                        help="bare pods through the API, or a DaemonSet and Deployments for the cloud's controllers")
    parser.add_argument("--qps", type=float, default=20.0, help="bare pods created per second (0: as fast as "
                        "--create-threads go)")
    parser.add_argument("--create-threads", type=int, default=4)
    parser.add_argument("--latency-pods", type=int, default=50, help="pods created one at a time once the workload "
                        "is Running (bare pods, or Deployments of one replica), their startup measured apart")
    parser.add_argument("--latency-qps", type=float, default=5.0, help="latency pods (or Deployments) created per "
                        "second")
    parser.add_argument("--nodes-per-process", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2, help="pod worker threads per hollow node")
    parser.add_argument("--stagger-s", type=float, default=10.0, help="each hollow process starts its nodes evenly "
                        "over this long (the heartbeat period: a fleet's heartbeats are not in step)")
    parser.add_argument("--steady-s", type=float, default=30.0, help="the steady state measured after")
    parser.add_argument("--timeout-s", type=float, default=900.0)
    parser.add_argument("--profile-cloud", type=Path, metavar="DIR", help="run each size's cloud under cProfile (its "
                        "event loop's thread) and write its stats to DIR/cloud-NODES.prof (the figures then include "
                        "the profiler's overhead)")
    args = parser.parse_args()
    if args.pods < args.nodes:
        raise SystemExit("--pods must be at least --nodes: the DaemonSet alone has one pod per node")

    if args.profile_cloud:
        args.profile_cloud.mkdir(parents=True, exist_ok=True)
    plan = sizes(args)
    root = Path(tempfile.mkdtemp(prefix="edgeworkers-fleet-"))
    password_file = root / "secrets" / "redis-password"
    password_file.parent.mkdir(mode=0o700)
    redis_port = free_port()
    daemon = redis_daemon(root, redis_port, password_file, databases=max(s.nodes for s in plan) + 1)
    outcomes = []
    try:
        daemon.start()
        client = redis_client(Settings(redis_url=f"redis://127.0.0.1:{redis_port}/0",
                                       redis_password_file=str(password_file)))
        for size in plan:
            print(f"{time.strftime('%H:%M:%S')} {size.nodes} nodes, {size.pods} pods ...", flush=True)
            outcomes.append(run_size(size, args, root / f"n{size.nodes}", redis_port, password_file))
            client.flushall()
        client.close()
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(outcomes, args)


if __name__ == "__main__":
    main()
