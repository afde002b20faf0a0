#!/usr/bin/env python3
"""The chaos run: the full-mode system under its supervisor, pods created and deleted with kubectl while faults are
injected one after another, at random (seeded); after each fault the cloud, MetaManager and Docker must agree.

Everything runs apart from the machine's own edgeworkers, on free ports, in one temp dir:

- a ``redis-server`` of its own (append-only file on, a password in a 0600 file) for the agent;
- a ``dockerd`` of its own (its data root, exec root, socket and pidfile in the temp dir, hence its own containerd),
  on a Linux bridge of its own (``--bridge=ewchaos-XXXX``, --bridge-cidr, made before and deleted after) with
  ``--iptables=false``, so the machine's ``docker0`` and iptables are untouched (``--bridge=none`` would not do:
  dockerd then deletes the host's ``docker0``, the shared dockerd's), holding the local images (``ops/images`` run
  against it);
- the cloud (``edgeworkers cloud serve``, ops/bench/bridge.py's ``Edge``), which the edge reaches through a TCP proxy
  of the bench's, so the cloud can go away for the edge while kubectl and the cloud's node lifecycle go on;
- the edge: the ``Procfile``'s processes but the cloud (``edgeworkers agent --no-worker``, ``edgeworkers worker``)
  under ``edgeworkers-supervisor``, which restarts a dead one alone.

A few pods (--stable) run throughout. Each cycle, a thread applies --churn new pods with ``kubectl apply`` and deletes
the previous cycle's with ``kubectl delete``, and meanwhile one fault, drawn at random:

- ``kill-agent``, ``kill-worker``, ``kill-both``: SIGKILL of the process(es); the supervisor restarts them;
- ``cloud-away``: the proxy drops every connection and refuses new ones for longer than the cloud's node-monitor grace
  period (the cloud marks the node ``Unknown``), and meanwhile one stable pod's app container is killed (``docker
  kill``);
- ``redis-restart`` (SIGTERM, start again) and ``redis-kill`` (SIGKILL, start again);
- ``dockerd-restart`` (SIGTERM, which stops every container, then start again).

Then, within --converge-s (2 min): every pod at the cloud is Running and ready with no deletion pending, MetaManager
(the agent's Redis) holds exactly those pods, Docker holds exactly one running sandbox and one running app container
for each (the one the cloud's status names) and nothing for a deleted pod; and no pod the fault did not touch was
restarted (its app container's ID and its restartCount unchanged). The time to converge is counted from the end of the
fault (the kill; the proxy back; Redis or dockerd answering again), and a killed process must have said it is ready
again and the node must be Ready at the cloud. The edge's restart back-off is capped at --backoff-max-s (40 s): a
pod whose container the faults kill again and again (a dockerd restart kills them all) is in CrashLoopBackOff by
design, up to 300 s with the system's default, which says nothing of convergence. At the end every pod is deleted and nothing may be
left. It prints, per fault kind, the time to converge (p50, max) and the failures, and the PSS (psutil's
``memory_full_info().pss``) of each edge process at the start and at the end; it exits 1 on any failure.

    .venv/bin/python ops/bench/chaos.py --cycles 20 --seed 1
    .venv/bin/python ops/bench/chaos.py --duration 3600 --seed 1     # the hour: cycles until it is up (at least 20)

Run as root (it starts a dockerd). Everything it made (processes, containers, the dockerd and its data) is removed at
the end, each process stopped by its PID.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import psutil
import yaml
from benchkit import Daemon, free_port, mb, print_command, redis_daemon, remove_containers, wait_until
from bridge import NAMESPACE, busybox_pod
from footprint import Mode
from honcho.environ import parse_procfile

from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiError, CloudUnavailable
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime import labels

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
FAULTS = ("kill-agent", "kill-worker", "kill-both", "cloud-away", "redis-restart", "redis-kill", "dockerd-restart")
EDGE_PROCESSES = ("agent", "worker")
# What each edge process logs once it is ready (as ops/up reads them).
READY_LINES = {"agent": "agent is ready", "worker": "Worker process is ready for action"}
LABEL = "chaos"
POLL_S = 0.5
START_TIMEOUT_S = 120.0
Snapshot = dict[str, dict[str, Any]]


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    return wait_until(condition, timeout_s, what, POLL_S)


def docker_daemon(root: Path, bridge: str) -> tuple[Daemon, str]:
    """A dockerd of the bench's own (its containerd, data, socket; the Linux bridge ``bridge``, no iptables), and its
    socket's URL."""
    directory = root / "docker"
    directory.mkdir(mode=0o700)
    host = f"unix://{directory}/docker.sock"
    argv = ["dockerd", "--data-root", str(directory / "data"), "--exec-root", str(directory / "exec"),
            "--pidfile", str(directory / "docker.pid"), "-H", host, f"--bridge={bridge}", "--iptables=false",
            "--ip-masq=false", "--ip6tables=false"]

    def answers() -> bool:
        try:
            client = docker.DockerClient(base_url=host, timeout=5)  # it asks the engine's version at once
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except Exception:  # noqa: BLE001 - any failure means not yet
            return False
        finally:
            client.close()

    return Daemon("dockerd", argv, directory / "dockerd.log", answers), host


class Proxy:
    """A TCP proxy from a free port to the cloud's: ``cut()`` drops every connection and refuses new ones (the cloud
    away for the edge), ``restore()`` lets them through again."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self.away = False
        self.transports: set[asyncio.BaseTransport] = set()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        self.server = self.loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", self.port))
        started.set()
        self.loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.away:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, upstream_writer.transport}
        self.transports |= pair
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
        self.transports -= pair

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    def cut(self) -> None:
        self.away = True

        def abort_all() -> None:
            for transport in list(self.transports):
                transport.abort()

        self.loop.call_soon_threadsafe(abort_all)

    def restore(self) -> None:
        self.away = False

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


class System(Mode):
    """The cloud (``Edge``'s) and the edge under edgeworkers-supervisor, on the bench's Redis and dockerd; the edge
    reaches the cloud through ``proxy``."""

    supervisor: subprocess.Popen | None = None

    def __init__(self, root: Path, redis_url: str, password_file: Path, docker_host: str,
                 args: argparse.Namespace) -> None:
        self.extra_env = {"EDGEWORKERS_REDIS_PASSWORD_FILE": str(password_file),
                          "EDGEWORKERS_DOCKER_HOST": docker_host,
                          "EDGEWORKERS_NODE_MONITOR_GRACE_PERIOD_S": str(args.grace_s),
                          "EDGEWORKERS_BACKOFF_MAX_S": str(args.backoff_max_s)}
        super().__init__(root, redis_url, 1, Settings().worker_threads)
        self.proxy = Proxy(self.port)

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        self.env.update(self.extra_env)
        return super()._start(name, argv)

    def start_edge(self) -> None:
        """The Procfile's edge processes (the cloud is the bench's) under edgeworkers-supervisor, the edge's cloud
        port the proxy's; return once the node is Ready at the cloud and the worker is ready."""
        procfile = self.root / "Procfile"
        entries = parse_procfile((ROOT / "Procfile").read_text()).processes
        procfile.write_text("".join(f"{name}: {command.replace('.venv/bin/', f'{VENV_BIN}/')}\n"
                                    for name, command in entries.items() if name != "cloud"))
        run_dir = self.root / "run"
        run_dir.mkdir()
        env = {**self.env, "EDGEWORKERS_CLOUD_PORT": str(self.proxy.port)}
        self.supervisor = subprocess.Popen(
            [str(VENV_BIN / "edgeworkers-supervisor"), "--procfile", str(procfile), "--run-dir", str(run_dir),
             "--log", str(self.edge_log), "--log-bytes", str(2**40), "--watchdog-s", "30", "--stop-timeout", "10"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)

        def ready() -> bool:
            self._check(self.supervisor, "edgeworkers-supervisor")
            text = self.edge_log.read_text(errors="replace") if self.edge_log.exists() else ""
            return "Worker process is ready for action" in text and self._node_ready()

        wait_for(ready, START_TIMEOUT_S, "the edge to be ready and its node Ready")

    @property
    def edge_log(self) -> Path:
        return self.root / "edge.log"

    def edge_processes(self) -> tuple[subprocess.Popen | None, ...]:
        return (self.supervisor,)

    def ready_count(self, name: str) -> int:
        """How many times the Procfile's process ``name`` said it was ready (one log, never rotated)."""
        prefix, marker = f" {name} | ", READY_LINES[name]
        with self.edge_log.open(errors="replace") as lines:
            return sum(prefix in line and marker in line for line in lines)

    def edge_pids(self) -> dict[str, int]:
        """The supervisor's running processes by Procfile name (agent, worker)."""
        found = {}
        for child in psutil.Process(self.supervisor.pid).children():
            try:
                words = child.cmdline()
            except psutil.NoSuchProcess:
                continue
            for name in EDGE_PROCESSES:
                if name in words[2:3]:
                    found[name] = child.pid
        return found

    def stop(self) -> None:
        super().stop()
        self.proxy.close()


@dataclass
class Cycle:
    fault: str
    converge_s: float | None = None
    problems: list[str] = field(default_factory=list)
    note: str = ""


class Chaos:
    """The run: the daemons, the system, the pods and the cycles."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.random = random.Random(args.seed)
        self.root = Path(tempfile.mkdtemp(prefix="edgeworkers-chaos-"))
        self.redis_port = free_port()
        password_file = self.root / "secrets" / "redis-password"
        password_file.parent.mkdir(mode=0o700)
        self.redis = redis_daemon(self.root, self.redis_port, password_file)
        self.bridge = f"ewchaos-{secrets.token_hex(2)}"  # at most 15 characters, as Linux wants
        self.bridge_made = False
        self.dockerd, self.docker_host = docker_daemon(self.root, self.bridge)
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.settings = Settings(redis_url=self.redis_url, redis_password_file=str(password_file))
        self.system: System | None = None
        self.docker: docker.DockerClient | None = None
        self.generation = 0
        self.churn_error = ""
        self.killed: dict[str, int] = {}  # a killed edge process: how often it had said it was ready before
        self.cycles: list[Cycle] = []
        self.pss: dict[str, dict[str, int]] = {}
        self.stopped_leftovers: set[str] = set()  # stopped containers of deleted pods once converged (the GC's)

    # --- setting up and tearing down ---

    def start(self) -> None:
        log(f"temp dir {self.root}; Redis on port {self.redis_port}; dockerd at {self.docker_host}")
        self.redis.start()
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        self.bridge_made = True
        for command in (["addr", "add", self.args.bridge_cidr, "dev", self.bridge], ["link", "set", self.bridge, "up"]):
            subprocess.run(["ip", *command], check=True)
        self.dockerd.start()
        subprocess.run([str(ROOT / "ops/images")], env={**os.environ, "DOCKER_HOST": self.docker_host}, check=True,
                       stdout=subprocess.DEVNULL)
        self.docker = docker.DockerClient(base_url=self.docker_host, timeout=60)
        (self.root / "system").mkdir()
        self.system = System(self.root / "system", self.redis_url, Path(self.settings.redis_password_file),
                             self.docker_host, self.args)
        self.system.start_edge()
        log(f"edge up: node {self.system.node}, cloud on port {self.system.port} (proxy {self.system.proxy.port})")

    def close(self) -> None:
        """Stop everything by PID; what the engine could not remove goes with its dockerd, mounts and data."""
        try:
            if self.system is not None:
                self.system.stop()
                if self.docker is not None:
                    remove_containers(self.docker, self.system.node)
        except docker.errors.DockerException as exc:
            log(f"could not remove every container: {exc}")
        finally:
            if self.docker is not None:
                self.docker.close()
            self.dockerd.stop()
            self.stop_leftovers()
            self.redis.stop()
            if self.bridge_made:
                subprocess.run(["ip", "link", "delete", self.bridge], check=False)
            self.unmount()
            shutil.rmtree(self.root, ignore_errors=True)

    def stop_leftovers(self) -> None:
        """Kill what the bench's dockerd left running, by PID: its containerd and the shims that outlive it, with
        their containers' processes (a container started while dockerd stopped may be left running, or in ``runc
        init``)."""
        exec_root = str(self.root / "docker" / "exec")
        leftovers = []
        for process in psutil.process_iter(["cmdline"]):
            if any(exec_root in word for word in process.info["cmdline"] or ()):
                leftovers += [*process.children(recursive=True), process]
        for process in leftovers:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(leftovers, timeout=30)

    def unmount(self) -> None:
        """Unmount what is still mounted under the temp dir (the rootfs of a container the engine lost track of)."""
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(f"{self.root}/")), key=len, reverse=True):
            subprocess.run(["umount", point], check=False)

    # --- pods ---

    def pod(self, name: str, generation: str) -> dict[str, Any]:
        manifest = busybox_pod(name, {LABEL: "yes", "generation": generation})
        manifest["spec"]["terminationGracePeriodSeconds"] = 1
        return manifest

    def apply(self, names: list[str], generation: str) -> None:
        self.system.kubectl("apply", "-f", "-",
                            input=yaml.safe_dump_all([self.pod(name, generation) for name in names]))

    def churn(self) -> None:
        """A cycle's churn: --churn new pods applied, the previous cycle's churn pods deleted (a failure recorded in
        ``churn_error``)."""
        self.generation += 1
        try:
            self.apply([f"churn-{self.generation}-{i}" for i in range(self.args.churn)], str(self.generation))
            time.sleep(self.random.uniform(0, 2))
            self.delete(f"generation={self.generation - 1}")
        except (SystemExit, subprocess.TimeoutExpired) as exc:
            self.churn_error = f"churn: {exc}"

    def delete(self, selector: str) -> None:
        self.system.kubectl("delete", "pod", "-l", selector, "--wait=false", "--ignore-not-found")

    # --- what the three sides hold ---

    def snapshot(self) -> tuple[Snapshot, set[str], dict[str, list[dict[str, Any]]]]:
        """The cloud's pods by key, MetaManager's pod keys, and Docker's containers of the node by pod key."""
        listed = self.system.api.list(f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": f"{LABEL}=yes"})
        cloud = {f"{NAMESPACE}/{pod['metadata']['name']}": pod for pod in listed.get("items") or []}
        client = redis_client(self.settings)
        try:
            meta = MetaStore(client).keys(POD)
        finally:
            client.close()
        containers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in self.docker.api.containers(all=True, filters={"label": f"{labels.NODE}={self.system.node}"}):
            entry_labels = entry["Labels"]
            containers[f"{entry_labels[labels.POD_NAMESPACE]}/{entry_labels[labels.POD_NAME]}"].append(entry)
        return cloud, meta, containers

    def problems(self) -> tuple[list[str], Snapshot]:
        """What keeps the three sides from agreeing (nothing: converged), and the cloud's pods then."""
        try:
            cloud, meta, containers = self.snapshot()
            ready = self.node_ready()
        except (ApiError, CloudUnavailable, docker.errors.DockerException, OSError, Exception) as exc:  # noqa: BLE001
            return [f"cannot read the state: {type(exc).__name__}: {exc}"], {}
        found = [f"{name} not ready again" for name, count in self.killed.items()
                 if self.system.ready_count(name) <= count]
        if ready != "True":
            found.append(f"the node's Ready is {ready} at the cloud")
        desired = {key for key, pod in cloud.items() if not pod["metadata"].get("deletionTimestamp")}
        found += [f"{key}: deletion pending" for key in sorted(cloud.keys() - desired)]
        if meta != desired:
            found.append(f"MetaManager {sorted(meta ^ desired)} differ from the cloud")
        leftovers: set[str] = set()
        for key in sorted(containers.keys() - desired):
            # Running: the deletion was confirmed too early. Stopped: left to the container GC when the engine
            # cannot remove it (dockerd 20.10's busy root filesystems after a restart), counted in the report.
            states = {c["Id"]: c["State"] for c in containers[key]}
            if any(state in ("running", "paused", "restarting") for state in states.values()):
                found.append(f"{key}: containers running for a deleted pod")
            leftovers |= {cid for cid, state in states.items() if state in ("exited", "dead", "created")}
        for key in sorted(desired):
            status = cloud[key].get("status") or {}
            statuses = status.get("containerStatuses") or []
            if status.get("phase") != "Running" or not statuses or not all(s.get("ready") for s in statuses):
                waiting = [s["state"]["waiting"].get("reason") for s in statuses if "waiting" in s.get("state", {})]
                found.append(f"{key}: {status.get('phase')} {waiting or ''}, not ready at the cloud")
                continue
            running = [c for c in containers.get(key, []) if c["State"] == "running"]
            apps = [c["Id"] for c in running if c["Labels"].get(labels.CONTAINER_TYPE) == labels.TYPE_APP]
            sandboxes = [c for c in running if c["Labels"].get(labels.CONTAINER_TYPE) == labels.TYPE_SANDBOX]
            if len(apps) != 1 or len(sandboxes) != 1:
                found.append(f"{key}: {len(sandboxes)} running sandboxes, {len(apps)} running apps in Docker")
            elif statuses[0].get("containerID") != f"docker://{apps[0]}":
                found.append(f"{key}: the cloud names {statuses[0].get('containerID')}, Docker runs {apps[0]}")
        if not found:
            self.stopped_leftovers |= leftovers
        return found, cloud

    @staticmethod
    def instances(cloud: Snapshot) -> dict[str, tuple[str, int]]:
        """Each live pod's app container ID and restartCount, as the cloud shows them."""
        found = {}
        for key, pod in cloud.items():
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if statuses and not pod["metadata"].get("deletionTimestamp"):
                found[key] = (statuses[0].get("containerID"), statuses[0].get("restartCount"))
        return found

    def converge(self, since: float, timeout_s: float) -> tuple[float | None, list[str], Snapshot]:
        """Seconds from ``since`` until the sides agreed (None: not within ``timeout_s``), the last problems."""
        while True:
            problems, cloud = self.problems()
            if not problems:
                return time.monotonic() - since, [], cloud
            if time.monotonic() - since > timeout_s:
                return None, problems, cloud
            time.sleep(POLL_S)

    # --- faults ---

    def fault(self, kind: str, before: dict[str, tuple[str, int]]) -> tuple[set[str], str]:
        """Inject ``kind``; the pods it touched (their restart is no failure) and a note."""
        if kind.startswith("kill-"):
            pids = wait_for(lambda: (found := self.system.edge_pids()).keys() == set(EDGE_PROCESSES) and found, 60,
                            "the supervisor's processes")
            names = EDGE_PROCESSES if kind == "kill-both" else (kind.removeprefix("kill-"),)
            for name in names:
                self.killed[name] = self.system.ready_count(name)
                os.kill(pids[name], signal.SIGKILL)
            return set(), f"pids {[pids[name] for name in names]}"
        if kind in ("redis-restart", "redis-kill"):
            self.redis.stop(signal.SIGTERM if kind == "redis-restart" else signal.SIGKILL)
            self.redis.start()
            return set(), ""
        if kind == "dockerd-restart":
            self.dockerd.stop(signal.SIGTERM)
            self.dockerd.start()
            return set(before), ""
        return self.cloud_away(before)

    def cloud_away(self, before: dict[str, tuple[str, int]]) -> tuple[set[str], str]:
        """The cloud away for the edge for longer than its node-monitor grace period (until the node is Unknown,
        at most grace + 30 s); one stable pod's app container killed meanwhile."""
        stable = sorted(key for key in before if key.startswith(f"{NAMESPACE}/stable-"))
        victim = self.random.choice(stable)
        began = time.monotonic()
        self.system.proxy.cut()
        time.sleep(self.args.grace_s / 2)
        self.docker.api.kill(before[victim][0].removeprefix("docker://"))
        unknown = False
        while time.monotonic() - began < self.args.grace_s + 30:
            unknown = unknown or self.node_ready() == "Unknown"
            if unknown and time.monotonic() - began > self.args.grace_s + 5:
                break
            time.sleep(1)
        self.system.proxy.restore()
        return {victim}, f"away {time.monotonic() - began:.0f} s, node {'Unknown' if unknown else 'NOT Unknown'}, " \
                         f"killed {victim}"

    def node_ready(self) -> str | None:
        node = self.system.api.get(f"/api/v1/nodes/{self.system.node}")
        return next((c["status"] for c in node.get("status", {}).get("conditions") or [] if c["type"] == "Ready"),
                    None)

    def cycle(self, kinds: list[str]) -> Cycle:
        _, cloud = self.problems()
        before = self.instances(cloud)
        kind = self.random.choice(kinds)
        cycle = Cycle(kind)
        churner = threading.Thread(target=self.churn)
        churner.start()
        time.sleep(self.random.uniform(0, 3))
        touched, cycle.note = self.fault(kind, before)
        ended = time.monotonic()
        churner.join()
        cycle.converge_s, problems, cloud = self.converge(ended, self.args.converge_s)
        if cycle.converge_s is None:
            log(f"  NOT converged within {self.args.converge_s:g} s: {problems}")
            late, still, cloud = self.converge(ended, self.args.converge_s + 300)
            if late is None:
                raise RuntimeError(f"{kind}: not converged within {self.args.converge_s + 300:g} s: {still}")
            cycle.problems += [f"not converged within {self.args.converge_s:g} s", *problems,
                               f"(converged late, after {late:.1f} s)"]
        self.killed.clear()
        if self.churn_error:
            cycle.problems.append(self.churn_error)
            self.churn_error = ""
        after = self.instances(cloud)
        for key in sorted(before.keys() & after.keys() - touched):
            if before[key] != after[key]:
                cycle.problems.append(f"{key} restarted: {before[key]} -> {after[key]}")
        return cycle

    # --- the run ---

    def run(self) -> None:
        kinds = self.args.faults.split(",")
        unknown = set(kinds) - set(FAULTS)
        if unknown:
            raise SystemExit(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self.apply([f"stable-{i}" for i in range(self.args.stable)], "stable")
        settled, problems, _ = self.converge(time.monotonic(), START_TIMEOUT_S)
        if settled is None:
            raise RuntimeError(f"the stable pods never converged: {problems}")
        self.pss["start"] = self.measure()
        began = time.monotonic()
        while len(self.cycles) < self.args.cycles or time.monotonic() - began < self.args.duration:
            cycle = self.cycle(kinds)
            self.cycles.append(cycle)
            took = "-" if cycle.converge_s is None else f"{cycle.converge_s:.1f} s"
            log(f"cycle {len(self.cycles)}: {cycle.fault}, converged in {took} {cycle.note} "
                f"{'; '.join(cycle.problems)}")
        self.pss["end"] = self.measure()
        self.delete(f"{LABEL}=yes")
        cleared, problems, cloud = self.converge(time.monotonic(), self.args.converge_s)
        left = [] if cleared is not None and not cloud else problems or sorted(cloud)
        if left:
            self.cycles.append(Cycle("final delete", None, [f"left at the end: {left}"]))
        log(f"everything deleted in {cleared or 0:.1f} s; left: {left or 'nothing'}")

    def measure(self) -> dict[str, int]:
        """PSS of each edge process (the supervisor's children, the supervisor, the agent's Redis)."""
        pids = {"edgeworkers-supervisor": self.system.supervisor.pid, **self.system.edge_pids(),
                "redis-server": self.redis.process.pid}
        return {name: psutil.Process(pid).memory_full_info().pss for name, pid in pids.items()}

    def report(self) -> bool:
        load = print_command()
        print(f"docker {self.docker.version()['Version']} (the bench's own dockerd), {os.cpu_count()} CPUs, load average now {load}; "
              f"seed {self.args.seed}, {len(self.cycles)} cycles, {self.args.stable} stable pods, "
              f"{self.args.churn} churned a cycle, node-monitor grace {self.args.grace_s:g} s, "
              f"restart back-off cap {self.args.backoff_max_s:g} s\n")
        print(f"  {'fault':<16} {'cycles':>6} {'p50 s':>7} {'max s':>7} {'failed':>6}")
        by_kind: dict[str, list[Cycle]] = defaultdict(list)
        for cycle in self.cycles:
            by_kind[cycle.fault].append(cycle)
        for kind, cycles in by_kind.items():
            times = [c.converge_s for c in cycles if c.converge_s is not None]
            p50 = f"{statistics.median(times):7.1f}" if times else f"{'-':>7}"
            worst = f"{max(times):7.1f}" if times else f"{'-':>7}"
            print(f"  {kind:<16} {len(cycles):>6} {p50} {worst} {sum(bool(c.problems) for c in cycles):>6}")
        failures = [c for c in self.cycles if c.problems]
        for cycle in failures:
            print(f"  FAILED {cycle.fault}: {'; '.join(cycle.problems)}")
        print(f"\n  {'edge process':<24} {'PSS MB start':>12} {'end':>8}")
        for name in self.pss.get("start", {}):
            end = self.pss.get("end", {}).get(name)
            print(f"  {name:<24} {mb(self.pss['start'][name]):>12} {'-' if end is None else mb(end):>8}")
        print(f"\n  stopped containers of deleted pods left once converged (the container GC's to remove): "
              f"{len(self.stopped_leftovers)}")
        print(f"\n{'FAILED' if failures else 'passed'}: {len(failures)} of {len(self.cycles)} cycles with problems")
        return not failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20, help="faults injected, at least")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to go on injecting (3600: the hour)")
    parser.add_argument("--seed", type=int, default=None, help="the random choices' seed (default: drawn, printed)")
    parser.add_argument("--faults", default=",".join(FAULTS), help="the fault kinds drawn from")
    parser.add_argument("--stable", type=int, default=4, help="pods running throughout")
    parser.add_argument("--churn", type=int, default=3, help="pods created (and deleted the next cycle) a cycle")
    parser.add_argument("--converge-s", type=float, default=120.0, help="the time to converge after a fault")
    parser.add_argument("--backoff-max-s", type=float, default=40.0,
                        help="the edge's restart back-off cap (EDGEWORKERS_BACKOFF_MAX_S; the system's default, 300, "
                             "would keep a pod the faults killed five times in 10 min down longer than --converge-s)")
    parser.add_argument("--bridge-cidr", default="172.31.250.1/24",
                        help="the address of the bench dockerd's own bridge (a subnet free on this machine)")
    parser.add_argument("--grace-s", type=float, default=Settings().node_monitor_grace_period_s,
                        help="the cloud's node-monitor grace period")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    if os.geteuid() != 0 or not shutil.which("dockerd") or not shutil.which("kubectl"):
        raise SystemExit("run as root, with dockerd and kubectl on PATH")
    chaos = Chaos(args)
    try:
        chaos.start()
        chaos.run()
    except (RuntimeError, SystemExit, KeyboardInterrupt) as exc:
        log(f"stopped: {exc}")
        chaos.cycles.append(Cycle("aborted", None, [str(exc)]))
    finally:
        passed = False
        try:
            passed = chaos.report() if chaos.docker is not None else False
        finally:
            chaos.close()
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
