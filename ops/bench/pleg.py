"""The PLEG and the prober at 100 pods, in one run.

    .venv/bin/python ops/bench/pleg.py --pods 100 --relists 200 --cpu-seconds 60 --probe-seconds 30

1. Relist: N running busybox pods (sandbox + app, started through DockerRuntime with a bench node label); the mean
   and p99 of one ``GenericPLEG.relist()`` beside the bare Docker list call it makes (same label filter).
   Target: relist <= 1.5x the bare list.
2. CPU: the real ``python -m scheduler`` on those pods (orphan cleanup and GC off, so it leaves them alone) for
   --cpu-seconds; its CPU time and PSS (psutil).
3. Probes: an exec readiness probe (``true``, periodSeconds 1) in each pod, run by a ``ProbeManager`` ticking every
   second for --probe-seconds; the fraction of runs started more than 1 s after they were due (target: none), also
   after the first 3 s (when the sessions are open), and a probe run's p50/p99; with the exec sessions, then (the
   baseline, --probe-mode) with a Docker exec per run. The load average at the start and the end of each.

4. Status delay (--kills K, 0 to skip): a cloud, bridge, worker and scheduler (the integration tests' own
   harness, ``tests.integration.loop.conftest.running_cluster``) on a node of their own; K pods (``restartPolicy:
   Never``, so no back-off) applied with kubectl and running; each pod's app container killed in turn, and the time
   from the kill to the cloud's pod showing the container terminated. Target: p99 under 1 s plus the relist period.

It uses free databases of the Redis at --redis-url (default: the test Redis) and removes every container and key
it made.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import psutil
import redis
import typer
from benchkit import claim_database

from edgeworkers.k8s.pod import Pod
from edgeworkers.pleg import GenericPLEG
from edgeworkers.prober import manager as manager_module
from edgeworkers.prober.manager import ProbeManager
from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig
from edgeworkers.status.proberesults import RedisProbeResults

WARM_UP_TICKS = 10  # the first ticks open the exec sessions (a Docker exec per container: seconds under load)


def cuts(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.mean(values), q[49], q[98]


def start_pods(runtime: DockerRuntime, count: int) -> list[tuple[PodRef, Pod]]:
    def one(i: int) -> tuple[PodRef, Pod]:
        ref = PodRef(str(uuid.uuid4()), "bench", f"p{i}")
        sandbox = runtime.create_sandbox(SandboxConfig(ref))
        app = runtime.create_container(sandbox, ref, ContainerConfig("app", "busybox", command=["sleep", "3600"]))
        runtime.start_container(app)
        pod = Pod.model_validate({"metadata": {"name": ref.name, "namespace": "bench", "uid": ref.uid}, "spec": {
            "containers": [{"name": "app", "image": "busybox", "readinessProbe": {
                "exec": {"command": ["true"]}, "periodSeconds": 1}}]}})  # fmt: skip
        return ref, pod

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def main(
    pods: int = 100,
    relists: int = 200,
    cpu_seconds: float = 60.0,
    probe_seconds: float = 30.0,
    probe_workers: int = 16,
    probe_mode: str = typer.Option("both", help="sessions, plain (a Docker exec per run) or both, in that order"),
    kills: int = 20,
    redis_url: str = typer.Option("redis://127.0.0.1:6399", help="a Redis without password; a free db is used"),
) -> None:
    node = f"bench-{uuid.uuid4().hex[:8]}"
    url = claim_database(redis_url)
    client = redis.Redis.from_url(url)
    runtime = DockerRuntime(node)
    api = docker.APIClient(version="auto")
    try:
        started = time.perf_counter()
        made = start_pods(runtime, pods)
        print(f"{pods} pods ({2 * pods} containers) running in {time.perf_counter() - started:.1f} s")

        pleg = GenericPLEG(runtime)
        pleg.relist()
        bare, relist = [], []
        for _ in range(relists):
            t0 = time.perf_counter()
            api.containers(all=True, filters={"label": [f"{labels.NODE}={node}"]})
            t1 = time.perf_counter()
            events = pleg.relist()
            t2 = time.perf_counter()
            assert not events, events
            bare.append(t1 - t0)
            relist.append(t2 - t1)
        (bm, b50, b99), (rm, r50, r99) = cuts(bare), cuts(relist)
        print(f"bare list  mean {bm * 1e3:6.2f} ms  p50 {b50 * 1e3:6.2f} ms  p99 {b99 * 1e3:6.2f} ms")
        print(f"relist     mean {rm * 1e3:6.2f} ms  p50 {r50 * 1e3:6.2f} ms  p99 {r99 * 1e3:6.2f} ms"
              f"   ratio mean {rm / bm:.2f}x  p99 {r99 / b99:.2f}x (target <= 1.5x)")  # fmt: skip

        if cpu_seconds > 0:
            data = tempfile.mkdtemp()
            env = {**os.environ, "EDGEWORKERS_NODE_NAME": node, "EDGEWORKERS_REDIS_URL": url,
                   "EDGEWORKERS_REDIS_PASSWORD_FILE": "", "EDGEWORKERS_DATA_DIR": data, "EDGEWORKERS_METRICS_PORT": "0",
                   "EDGEWORKERS_ORPHAN_CLEANUP_PERIOD_S": "100000", "EDGEWORKERS_CONTAINER_GC_PERIOD_S": "100000",
                   "EDGEWORKERS_IMAGE_GC_HIGH_THRESHOLD_PERCENT": "100"}  # fmt: skip
            log = Path(data) / "scheduler.log"
            process = subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdout=log.open("wb"),
                                       stderr=subprocess.STDOUT)  # fmt: skip
            try:
                deadline = time.monotonic() + 30
                while "scheduler is ready" not in log.read_text() and time.monotonic() < deadline:
                    time.sleep(0.2)
                proc = psutil.Process(process.pid)
                before = proc.cpu_times()
                time.sleep(cpu_seconds)
                after = proc.cpu_times()
                used = (after.user + after.system) - (before.user + before.system)
                pss = proc.memory_full_info().pss / 2**20
                print(f"scheduler  CPU {used:.2f} s over {cpu_seconds:g} s = {100 * used / cpu_seconds:.1f} % of a core;"
                      f" PSS {pss:.1f} MiB")  # fmt: skip
            finally:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:  # a loaded machine: do not leave it running
                    process.kill()
                    process.wait(10)

        if probe_seconds > 0:
            modes = {"sessions": True, "plain": False}
            for mode in [probe_mode] if probe_mode in modes else list(modes):
                probe_run(runtime, client, [pod for _, pod in made], probe_seconds, probe_workers, mode, modes[mode])
    finally:
        for container in api.containers(all=True, filters={"label": [f"{labels.NODE}={node}"]}):
            api.remove_container(container["Id"], force=True)
        client.flushdb()
    if kills > 0:
        status_delay(kills, redis_url)


def probe_run(runtime: DockerRuntime, client: redis.Redis, pods: list[Pod], seconds: float, workers: int, mode: str,
              sessions: bool) -> None:  # fmt: skip
    """Part 3: the pods' exec probes for ``seconds``, through shell sessions or a Docker exec per run."""
    durations: list[float] = []
    timed = manager_module.run_probe

    def run_timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return timed(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - t0)

    manager_module.run_probe = run_timed
    prober = ProbeManager(runtime, RedisProbeResults(client), lambda: pods, lambda key: None, workers=workers, exec_sessions=sessions)
    load = os.getloadavg()[0]
    engine = engine_processes({c.id.id for c in runtime.list_containers()})
    next_tick = time.monotonic()
    end = next_tick + seconds
    ticks = 0
    tick_delays: list[float] = []  # how late each tick started, listing included (the bench's own loop)
    late_by_tick: list[int] = []
    while next_tick < end:
        containers = runtime.list_containers()
        tick_delays.append(time.monotonic() - next_tick)
        before = prober.late_runs
        prober.tick(containers)
        late_by_tick.append(prober.late_runs - before)
        ticks += 1
        if ticks == WARM_UP_TICKS:
            warm = (prober.runs, prober.late_runs)
            shells = session_shells({c.id.id for c in containers}) if sessions else []
            cpu_before = cpu_by_group(engine + shells)
        next_tick += 1.0
        time.sleep(max(0.0, next_tick - time.monotonic()))
    shells = session_shells({c.id.id for c in runtime.list_containers()}) if sessions else []
    pss = sum(pss_of(shell) for shell in shells) / 2**20
    cpu = {group: used - cpu_before.get(group, 0.0) for group, used in cpu_by_group(engine + shells).items()}
    prober.close()
    manager_module.run_probe = timed
    _, d50, d99 = cuts(durations)
    runs, late = prober.runs - warm[0], prober.late_runs - warm[1]
    print(f"probes     {mode:8s} {prober.runs} runs, {prober.late_runs} started > 1 s late "
          f"({prober.late_runs / max(1, prober.runs):.1%}); after the first {WARM_UP_TICKS} s: {runs} runs, {late} late "
          f"({late / max(1, runs):.1%}); probe run p50 {d50 * 1e3:.1f} ms p99 {d99 * 1e3:.1f} ms; "
          f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip
    late_ticks = [(i, n) for i, n in enumerate(late_by_tick) if n and i >= WARM_UP_TICKS]
    _, t50, t99 = cuts(tick_delays)
    print(f"           after the first {WARM_UP_TICKS} s, late runs came in {len(late_ticks)} of {ticks - WARM_UP_TICKS}"
          f" ticks {late_ticks[:8]}; tick start delay p50 {t50 * 1e3:.0f} ms p99 {t99 * 1e3:.0f} ms, max "
          f"{max(tick_delays) * 1e3:.0f} ms")  # fmt: skip
    print(f"           CPU after the first {WARM_UP_TICKS} s, ms a run: {1e3 * sum(cpu.values()) / max(1, runs):.1f} = "
          + ", ".join(f"{group} {1e3 * used / max(1, runs):.1f}" for group, used in sorted(cpu.items())))
    if sessions:
        print(f"           {len(shells)} session shells in the containers, PSS {pss:.1f} MiB in all")


def pss_of(process: psutil.Process) -> int:
    try:
        return process.memory_full_info().pss
    except psutil.Error:  # gone meanwhile (a session killed after a timeout)
        return 0


def engine_processes(container_ids: set[str]) -> list[psutil.Process]:
    """This process and the engine's: dockerd and containerd (shared with whatever else uses Docker meanwhile), the
    shims of ``container_ids`` (they reap runc and the processes it exec'd)."""
    found = [psutil.Process()]
    for process in psutil.process_iter(["name", "cmdline"]):
        name, cmdline = process.info["name"] or "", process.info["cmdline"] or []
        if name in ("dockerd", "containerd") or (
            name.startswith("containerd-shim") and any(arg in container_ids for arg in cmdline)
        ):
            found.append(process)
    return found


def cpu_by_group(processes: list[psutil.Process]) -> dict[str, float]:
    """CPU time of ``processes`` with their reaped children, by kind: bench (this process: lists, prober), dockerd,
    containerd, shims (they reap runc and what it exec'd), shells (the sessions', with the probe commands)."""
    me = os.getpid()
    total: dict[str, float] = {}
    for process in processes:
        try:
            times, name = process.cpu_times(), process.name()
        except psutil.Error:
            continue
        group = "bench" if process.pid == me else "shims" if name.startswith("containerd-shim") else (
            "shells" if name == "sh" else name)  # fmt: skip
        total[group] = total.get(group, 0.0) + times.user + times.system + times.children_user + times.children_system
    return total


def session_shells(container_ids: set[str]) -> list[psutil.Process]:
    """The exec sessions' /bin/sh processes in these containers (by their cgroup)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if process.info["cmdline"] == ["/bin/sh"]:
                cgroup = Path(f"/proc/{process.pid}/cgroup").read_text()
                if any(ident in cgroup for ident in container_ids):
                    found.append(process)
        except (OSError, psutil.Error):
            continue
    return found


def status_delay(kills: int, redis_url: str) -> None:
    """Part 4: from a container's death to the cloud's pod showing it, over ``kills`` pods."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: its tests' harness
    from edgeworkers.config import Settings
    from tests.integration.cloud.conftest import running_cloud
    from tests.integration.loop.conftest import busybox_pod, running_cluster

    url = claim_database(redis_url)
    client = redis.Redis.from_url(url)
    root = Path(tempfile.mkdtemp(prefix="bench-pleg-"))
    (root / "cloud").mkdir()
    node = f"bench-{uuid.uuid4().hex[:8]}"
    config = Settings(node_name=node, redis_url=url, data_dir=root / "data", cloud_data_dir=root / "cloud-data")
    docker_client = docker.from_env()
    delays = []
    try:
        with running_cloud(root / "cloud") as cloud, running_cluster(cloud, config, root, client, docker_client) as c:
            names = [f"k{i}" for i in range(kills)]
            c.apply(*(busybox_pod(name, "sleep 3600", restartPolicy="Never", grace=0) for name in names))
            c.wait_running(*names, timeout_s=180)
            for name in names:
                (app,) = [x for x in docker_client.containers.list(filters={"label": [
                    f"{labels.NODE}={node}", f"{labels.POD_NAME}={name}", f"{labels.CONTAINER_NAME}=app"]})]  # fmt: skip
                app.kill()
                killed = time.monotonic()
                while time.monotonic() - killed < 30:
                    statuses = (c.cloud_pod(name) or {}).get("status", {}).get("containerStatuses") or []
                    if statuses and "terminated" in statuses[0]["state"]:
                        delays.append(time.monotonic() - killed)
                        break
                    time.sleep(0.01)
    finally:
        client.flushdb()
        for container in docker_client.containers.list(all=True, filters={"label": f"{labels.NODE}={node}"}):
            container.remove(force=True)
    mean, p50, p99 = cuts(delays)
    print(f"status     {len(delays)}/{kills} deaths shown at the cloud: mean {mean:.2f} s p50 {p50:.2f} s "
          f"p99 {p99:.2f} s (target < 1 s + the relist period)")  # fmt: skip


if __name__ == "__main__":
    typer.run(main)
