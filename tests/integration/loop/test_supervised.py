"""The real edge processes of the Procfile (`agent --no-worker`, `worker`) under `edgeworkers-supervisor`, as `ops/up`
runs them (the shared cloud stands in for the Procfile's `cloud`, whose restart tests/integration/test_ops_up.py
covers): a process SIGKILLed or frozen comes back alone while pods applied with kubectl meanwhile run; restarting
every process, as an upgrade does, restarts no pod.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgeworkers.runtime import labels
from tests.integration.cloud.conftest import EDGEWORKERS, Cloud, free_port
from tests.integration.loop.conftest import WORKER_READY, Cluster, busybox_pod, hold_for, running_at_cloud
from tests.polling import wait_for

SUPERVISOR = str(Path(EDGEWORKERS).with_name("edgeworkers-supervisor"))
# Short, for the test: a frozen process is noticed within this (the edge's loops beat every 1-2 s here).
WATCHDOG_S = 8
PROCFILE = f"agent: {EDGEWORKERS} agent --no-worker\nworker: {EDGEWORKERS} worker --processes 1 --threads 4\n"
AGENT_READY = "agent is ready"


class Supervised:
    """`edgeworkers-supervisor` running the edge's Procfile for the cluster's node."""

    def __init__(self, cluster: Cluster, run_dir: Path) -> None:
        self.cluster = cluster
        self.run_dir = run_dir
        self.procfile = run_dir / "Procfile"
        self.procfile.write_text(PROCFILE)
        self.process: subprocess.Popen | None = None

    @property
    def log(self) -> str:
        path = self.run_dir / "edgeworkers.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pids(self) -> dict[str, int]:
        state = self.run_dir / "supervisor.state"
        lines = state.read_text().splitlines() if state.exists() else []
        return {name: int(pid) for name, pid, _ in (line.split() for line in lines)}

    def start(self) -> None:
        """Start the supervisor; return once the agent renewed the node's Lease and both processes are ready."""
        ready_before = (self.log.count(AGENT_READY), self.log.count(WORKER_READY))
        since = datetime.now(UTC).replace(microsecond=0)
        self.process = subprocess.Popen(
            [SUPERVISOR, "--procfile", str(self.procfile), "--run-dir", str(self.run_dir),
             "--watchdog-s", str(WATCHDOG_S)],
            env=self.cluster.env(), start_new_session=True,
        )

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, f"the supervisor exited:\n{self.log}"
            return (self.log.count(AGENT_READY) > ready_before[0] and self.log.count(WORKER_READY) > ready_before[1]
                    and self.cluster.heartbeat_since(since))

        wait_for(ready, 90, "the supervised agent and worker to be ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)

    def restarted(self, name: str, before: dict[str, int], timeout_s: float) -> dict[str, int]:
        """Wait until ``name`` runs with another PID than in ``before``; the PIDs then."""

        def changed() -> dict[str, int] | None:
            now = self.pids()
            return now if now.get(name, before[name]) != before[name] else None

        return wait_for(changed, timeout_s, f"{name} restarted by the supervisor", interval_s=0.1)


@pytest.fixture
def supervised(shared_cloud: Cloud, real_settings, tmp_path: Path, real_redis, docker_client) -> Iterator[Supervised]:
    cluster = Cluster(shared_cloud, real_settings, tmp_path, real_redis, docker_client, free_port())
    edge = Supervised(cluster, tmp_path)
    try:
        edge.start()
        yield edge
    finally:
        edge.stop()
        cluster.close()
        print(edge.log[-20_000:])  # pytest shows it when the test failed


def test_a_killed_or_frozen_edge_process_comes_back_alone_and_pods_keep_running(supervised: Supervised) -> None:
    cluster = supervised.cluster
    cluster.apply(busybox_pod("before", node=cluster.node))
    cluster.wait_running("before")
    before_ids = cluster.running_ids("before")

    for name in ("agent", "worker"):
        pids = supervised.pids()
        with ThreadPoolExecutor(1) as kubectl:
            os.kill(pids[name], signal.SIGKILL)
            killed = time.monotonic()
            applied = kubectl.submit(cluster.apply, busybox_pod(f"during-{name}", node=cluster.node))  # meanwhile

            now = supervised.restarted(name, pids, timeout_s=5)

            assert time.monotonic() - killed <= 5
            applied.result()
        assert {n: p for n, p in now.items() if n != name} == {n: p for n, p in pids.items() if n != name}
        cluster.wait_running(f"during-{name}")

    # Frozen whole: its watchdog pings stop, and the supervisor kills and restarts it.
    pids = supervised.pids()
    os.kill(pids["agent"], signal.SIGSTOP)
    now = supervised.restarted("agent", pids, timeout_s=WATCHDOG_S + 10)
    assert now["worker"] == pids["worker"]
    assert "agent: watchdog: no WATCHDOG=1" in supervised.log
    cluster.apply(busybox_pod("after-freeze", node=cluster.node))
    cluster.wait_running("after-freeze")

    assert cluster.running_ids("before") == before_ids  # no restart of a pod through it all


PODS = 20


def test_restarting_every_edge_process_with_20_pods_running_restarts_no_container(supervised: Supervised) -> None:
    cluster = supervised.cluster
    names = [f"p{i:02d}" for i in range(PODS)]
    cluster.apply(*(busybox_pod(name, node=cluster.node) for name in names))
    cluster.wait_running(*names, timeout_s=180)

    def containers() -> dict[str, tuple[str, str]]:
        """Every container of the node: id -> (its state, its restart count label)."""
        return {c.id: (c.status, c.labels[labels.RESTART_COUNT])
                for c in cluster.containers()}

    def restart_counts() -> dict[str, list[int]]:
        pods = cluster.cloud_pods()
        return {name: [c.get("restartCount", 0) for c in pod["status"]["containerStatuses"]]
                for name, pod in pods.items()}

    before = containers()
    assert len(before) == 2 * PODS and {state for state, _ in before.values()} == {"running"}
    counts = restart_counts()

    # An upgrade: every edge process stopped and started again (the supervisor too).
    old = supervised.pids()
    supervised.stop()
    supervised.start()
    assert not set(supervised.pids().values()) & set(old.values())

    # The new processes resync every desired pod and relist: long enough for both, the same containers throughout.
    hold_for(lambda: containers() == before, 15, "the same containers, running, with the same restart counts")
    assert restart_counts() == counts
    assert all(running_at_cloud(pod) for pod in cluster.cloud_pods().values())


def test_a_node_shutdown_stops_the_pods_and_the_next_boot_runs_them_again(supervised: Supervised) -> None:
    cluster = supervised.cluster
    cluster.apply(*(busybox_pod(name, node=cluster.node) for name in ("a", "b")))
    cluster.wait_running("a", "b")

    # Not shutting down (an operator's stop of the unit): nothing happens.
    assert "not shutting down" in cluster.edgeworkers("node-shutdown", "--if-shutting-down").stdout
    assert cluster.running_pods() == {"a", "b"}

    # The shutdown, in systemd's order: the edge's processes stop, the pods stop, (docker and Redis stop).
    supervised.stop()
    kept = {c.id for c in cluster.containers()}
    stopped = cluster.edgeworkers("node-shutdown", "--grace-period", "1")
    assert "stopped 4 container(s) of 2 pod(s)" in stopped.stdout
    assert {c.status for c in cluster.containers()} == {"exited"} and {c.id for c in cluster.containers()} == kept

    # The next boot: the agent and the worker start and run the desired pods again.
    supervised.start()
    wait_for(lambda: cluster.running_pods() == {"a", "b"}, 60, "the pods running again in Docker")
    cluster.wait_running("a", "b")  # (the cloud showed them Running all along: nobody told it otherwise)
