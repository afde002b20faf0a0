"""The PLEG and the prober at 100 pods, in one run.

    .venv/bin/python ops/bench/pleg.py --pods 100 --relists 200 --cpu-seconds 60 --probe-seconds 30

1. Relist: N running busybox pods (sandbox + app, started through DockerRuntime with a bench node label); the mean
   and p99 of one ``GenericPLEG.relist()`` beside the bare Docker list call it makes (same label filter).
   Target: relist <= 1.5x the bare list.
2. CPU: the real ``python -m scheduler`` on those pods (orphan cleanup and GC off, so it leaves them alone) for
   --cpu-seconds; its CPU time and PSS (psutil).
3. Probes: an exec readiness probe (``true``, periodSeconds 1) in each pod, run by a ``ProbeManager`` ticking every
   second for --probe-seconds; the fraction of runs started more than 1 s after they were due (target: none),
   and the exec round trip's p50/p99.

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
from edgeworkers.prober.manager import ProbeManager
from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig


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
                process.wait(15)

        if probe_seconds > 0:
            durations: list[float] = []
            timed = runtime.exec

            def exec_timed(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return timed(*args, **kwargs)
                finally:
                    durations.append(time.perf_counter() - t0)

            runtime.exec = exec_timed  # type: ignore[method-assign]
            prober = ProbeManager(runtime, client, lambda: [pod for _, pod in made], lambda key: None,
                                  workers=probe_workers)  # fmt: skip
            next_tick = time.monotonic()
            end = next_tick + probe_seconds
            while next_tick < end:
                prober.tick(runtime.list_containers())
                next_tick += 1.0
                time.sleep(max(0.0, next_tick - time.monotonic()))
            prober.close()
            _, d50, d99 = cuts(durations)
            print(f"probes     {prober.runs} runs, {prober.late_runs} started > 1 s late "
                  f"({prober.late_runs / max(1, prober.runs):.1%}); exec p50 {d50 * 1e3:.0f} ms p99 {d99 * 1e3:.0f} ms")
    finally:
        for container in api.containers(all=True, filters={"label": [f"{labels.NODE}={node}"]}):
            api.remove_container(container["Id"], force=True)
        client.flushdb()
    if kills > 0:
        status_delay(kills, redis_url)


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
