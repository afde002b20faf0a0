"""What the benchmarks share: a Redis database of their own, removing the containers they made, and the two ways
of starting pods that pods.py and scaling.py compare (raw Docker SDK calls, and the agent's queues).

Imported by the scripts beside it (``ops/bench/X.py`` runs with this folder on ``sys.path``).
"""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import redis

from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.desired import apply_pod, delete_pod
from edgeworkers.privatefiles import write_private
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime import labels
from edgeworkers.tasks import sender

CLAIM_KEY = "edgeworkers:bench-claim"


def claim_database(url: str) -> str:
    """The URL of an empty database of the Redis at ``url``, claimed with a key (as the test fixtures do)."""
    for db in range(255, 0, -1):
        client = redis.Redis.from_url(f"{url}/{db}")
        if client.dbsize() == 0 and client.set(CLAIM_KEY, os.getpid(), nx=True):
            return f"{url}/{db}"
    raise SystemExit(f"no free database on {url}")


def bench_settings(redis_url: str) -> Settings:
    """Settings of a bench node of its own: a fresh name, a temp data dir and a free database of the Redis at
    ``redis_url``. ``raw_node`` names its raw-Docker twin; ``remove_bench_node`` undoes both."""
    data_dir = Path(tempfile.mkdtemp(prefix="edgeworkers-bench-"))
    return Settings(node_name=f"bench-{uuid.uuid4().hex[:8]}", data_dir=data_dir, redis_url=claim_database(redis_url))


def raw_node(settings: Settings) -> str:
    return f"{settings.node_name}-raw"


def remove_bench_node(client: docker.DockerClient, settings: Settings) -> None:
    """Remove the containers of the bench node and its raw twin, empty its Redis database, remove its data dir."""
    remove_containers(client, raw_node(settings))
    remove_containers(client, settings.node_name)
    redis.Redis.from_url(settings.redis_url).flushdb()
    shutil.rmtree(settings.data_dir)


def teardown(edge: Any, docker_client: docker.DockerClient, client: redis.Redis, root: Path) -> None:
    """Undo a bench's edge: stop its processes (``edge.stop()``, when it started: not None), remove the containers of
    its node (``edge.node``), empty and close its Redis database, remove its temp dir ``root``."""
    if edge is not None:
        edge.stop()
        remove_containers(docker_client, edge.node)
    client.flushdb()
    client.close()
    shutil.rmtree(root, ignore_errors=True)


def remove_containers(client: docker.DockerClient, node: str) -> None:
    """Remove every container labelled for ``node`` (the benchmark's own node name), in parallel."""

    def remove(ident: str) -> None:
        try:
            client.api.remove_container(ident, force=True)
        except docker.errors.NotFound:
            pass

    entries = client.api.containers(all=True, filters={"label": f"{labels.NODE}={node}"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, [entry["Id"] for entry in entries]))


class Daemon:
    """A daemon the bench runs (``argv``, its output in ``log``), restarted and signalled by its PID only."""

    def __init__(self, name: str, argv: list[str], log_file: Path, answers: Callable[[], bool]) -> None:
        self.name, self.argv, self.log_file, self.answers = name, argv, log_file, answers
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        wait_until(lambda: self._alive() and self.answers(), 60, f"{self.name} to answer", poll_s=0.1)

    def _alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")
        return True

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def redis_daemon(root: Path, port: int, password_file: Path, databases: int = 16) -> Daemon:
    """An agent's Redis of the bench's own, persistent (append-only file), requiring the password (in its 0600 config,
    never argv), with ``databases`` databases."""
    directory = root / "redis"
    directory.mkdir(mode=0o700)
    password = secrets.token_urlsafe(24)
    write_private(password_file, password.encode())
    config = directory / "redis.conf"
    write_private(config, (f"bind 127.0.0.1\nport {port}\ndir {directory}\nappendonly yes\nappendfsync everysec\n"
                           f"save \"\"\ndaemonize no\ndatabases {databases}\nrequirepass {password}\n").encode())
    client = redis_client(Settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_password_file=str(password_file)))

    def answers() -> bool:
        try:
            return bool(client.ping())
        except Exception:  # noqa: BLE001 - any failure means not yet
            return False

    return Daemon("redis-server", ["redis-server", str(config)], directory / "redis.log", answers)


# --- starting pods: raw Docker SDK calls, and the agent's queues (pods.py, scaling.py) -------------------------------


@dataclass
class Result:
    """N pods started on one path: how long the batch took, and each pod's latency (enqueue to running)."""

    name: str
    pods: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.pods / self.seconds

    def quantile(self, percent: int) -> float:
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1]

    def line(self) -> str:
        return (
            f"{self.name:<7} {self.pods} pods in {self.seconds:6.2f} s = {self.rate:6.2f} pods/s   "
            f"latency p50 {self.quantile(50):.3f} s  p99 {self.quantile(99):.3f} s"
        )


def total(name: str, results: list[Result]) -> Result:
    """The results of several rounds as one."""
    return Result(
        name, sum(r.pods for r in results), sum(r.seconds for r in results), [x for r in results for x in r.latencies]
    )


def print_command() -> str:
    """Print the command line that ran the benchmark (as BENCHMARKS.md quotes it); the load averages now, to print."""
    print(f"\n$ {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.01) -> Any:
    """Poll ``condition`` until it holds (and return what it returned); end the bench after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mb(value: int) -> str:
    """Bytes as MiB with one decimal, as the benches print memory."""
    return f"{value / 2**20:.1f}"


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


def raw_pods(
    client: docker.DockerClient, node: str, prefix: str, pods: int, threads: int, image: str, sandbox_image: str
) -> Result:
    """``threads`` threads each create and start a sandbox (the pause image, shareable IPC) and an app container
    joined to it, for ``pods`` pods labelled for ``node``: what a sync does for a new pod, without the agent."""
    api = client.api

    def one(index: int) -> float:
        name = f"{prefix}-{index}"
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
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = list(pool.map(one, range(pods)))
    return Result("raw", pods, max(done) - begin, [t - begin for t in done])


def both_paths(
    client: docker.DockerClient, queues: QueuePath, prefix: str, pods: int, threads: int, image: str, raw_first: bool
) -> tuple[Result, Result]:
    """``pods`` pods through the queues and by raw Docker calls on ``threads`` threads, ``raw_first`` or not (a busy
    machine skews whichever goes first, so callers alternate); each path's containers removed after it. (queued, raw)"""
    results: dict[str, Result] = {}
    for path in ("raw", "queues") if raw_first else ("queues", "raw"):
        if path == "raw":
            node = raw_node(queues.settings)
            results[path] = raw_pods(client, node, prefix, pods, threads, image, queues.settings.sandbox_image)
            remove_containers(client, node)
        else:
            results[path] = queues.run(prefix, pods)
            queues.delete_all(prefix)
    return results["queues"], results["raw"]


def start_worker(settings: Settings, processes: int, threads: int, log: Path) -> subprocess.Popen:
    """`edgeworkers worker` on ``settings``' Redis database and node, in a process group of its own."""
    env = {
        **os.environ,
        "EDGEWORKERS_NODE_NAME": settings.node_name,
        "EDGEWORKERS_REDIS_URL": settings.redis_url,
        "EDGEWORKERS_REDIS_PASSWORD_FILE": settings.redis_password_file,
        "EDGEWORKERS_DATA_DIR": str(settings.data_dir),
    }
    argv = [str(Path(sys.executable).with_name("edgeworkers")), "worker",
            "--processes", str(processes), "--threads", str(threads)]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process_group(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM the process group we started (SIGKILL after ``timeout_s``)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def busybox_pod(name: str, image: str) -> dict:
    container = {"name": "app", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
    return {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]}}


class QueuePath:
    """The agent's path: an `edgeworkers worker` (``processes`` x ``threads``), fed through ``pods.desired``."""

    def __init__(self, client: docker.DockerClient, settings: Settings, processes: int, threads: int, image: str) -> None:
        self.client, self.settings, self.image = client, settings, image
        self.store = MetaStore(redis.Redis.from_url(settings.redis_url))
        self.send = sender(make_broker(settings, redis_client(settings)))
        self.watcher = StartWatcher(client, settings.node_name)
        self.worker = start_worker(settings, processes, threads, settings.data_dir / "worker.log")
        # Warm up: every worker process is up and has built its runtime before any clock starts.
        warmups = [f"warmup-{index}" for index in range(processes)]
        for name in warmups:
            self._apply(name)
        wait_until(lambda: all(name in self.watcher.started for name in warmups), 120, "the warm-up pods")
        self.delete_all("warmup")

    def _apply(self, name: str) -> None:
        apply_pod(self.store, self.send, busybox_pod(name, self.image))

    def run(self, prefix: str, pods: int) -> Result:
        """Apply ``pods`` pods at once; the time until the last app container started, and each pod's latency."""
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
        """Delete the pods named ``prefix-*`` through the queues too (untimed) and wait until their containers are
        gone."""
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
        stop_process_group(self.worker)
