"""Fixtures of the lite mode's integration tests: `edgeworkers agent` (bridge, scheduler's jobs and worker in one
process) as the worker of the queue tests, and as the whole edge against a real cloud.

Each agent runs as its own process group, stopped (by PID) after its test; its containers carry the test's node name.
Without a cloud (the queue tests) the agent's bridge waits for credentials in its own temporary cloud data dir, and the
rest of the agent works on.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest
import redis

from edgeworkers.config import Settings
from tests.integration.cloud.conftest import EDGEWORKERS, START_TIMEOUT_S, Cloud, free_port, running_cloud
from tests.integration.loop.conftest import Cluster, start_process
from tests.integration.queue.queuekit import Worker, worker_env
from tests.polling import wait_for

LAUNCHER = Path(__file__).with_name("lite_agent.py")
AGENT_READY = "agent is ready"
WORKER_READY = "Worker process is ready for action."


def agent_env(config: Settings) -> dict[str, str]:
    """``queuekit.worker_env`` plus what the agent's other parts need on a shared machine: a cloud data dir of the
    test's own, no metrics port, no image GC, a free node port."""
    return {
        **worker_env(config),
        "EDGEWORKERS_CLOUD_DATA_DIR": str(config.cloud_data_dir),
        "EDGEWORKERS_METRICS_PORT": "0",
        "EDGEWORKERS_IMAGE_GC_HIGH_THRESHOLD_PERCENT": "100",
        "EDGEWORKERS_NODE_PORT": str(free_port()),
    }


def start_agent(argv: list[str], env: dict[str, str], log: Path, ready_line: str = "agent is ready") -> Worker:
    """Start an agent (its own process group) and return once its output shows ``ready_line``."""
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    agent = Worker(process, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the agent exited with {process.returncode}:\n{agent.output()[-3000:]}")
        return ready_line in agent.output()

    wait_for(ready, START_TIMEOUT_S, "the agent to be ready")
    return agent


@pytest.fixture(params=["agent", "worker"])
def start_worker(
    request: pytest.FixtureRequest, config: Settings, tmp_path: Path, real_redis: redis.Redis
) -> Iterator[Callable[..., Worker]]:
    """The queue tests' ``start_worker(processes, threads, module, env)``, starting one process with ``processes *
    threads`` worker threads: a lite agent, or `edgeworkers worker --processes 1` (Dramatiq's worker in-process, no
    `dramatiq` master); all are stopped after the test."""
    started: list[Worker] = []
    command = request.param

    def start(processes: int = 1, threads: int = 4, module: str = "edgeworkers.workerprocess",
              env: dict[str, str] | None = None) -> Worker:
        argv = [sys.executable, str(LAUNCHER), module, command, "--threads", str(processes * threads)]
        if command == "worker":
            argv += ["--processes", "1"]
        log = tmp_path / f"{command}-{len(started)}.log"
        agent = start_agent(argv, {**agent_env(config), **(env or {})}, log, WORKER_READY if command == "worker" else AGENT_READY)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


class LiteCluster(Cluster):
    """The loop's ``Cluster`` whose edge is one `edgeworkers agent` (held as its ``worker``)."""

    def start_agent(self, timeout_s: float = START_TIMEOUT_S) -> None:
        since = datetime.now(UTC).replace(microsecond=0)
        self.worker = start_agent([EDGEWORKERS, "agent", "--threads", "4"], self.env(), self.worker_log)

        def up() -> bool:
            if self.worker.process.poll() is not None:
                raise AssertionError(f"the agent exited:\n{self.tail(self.worker_log)}")
            return "scheduler is ready" in self.worker.output() and self.heartbeat_since(since)

        wait_for(up, timeout_s, "the agent's node to renew its lease")

    def start_full(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """The Procfile's full mode: `edgeworkers worker`, then `edgeworkers agent --no-worker` (held as the bridge)."""
        self.start_worker(timeout_s)
        since = datetime.now(UTC).replace(microsecond=0)
        process = self.bridge = start_process([EDGEWORKERS, "agent", "--no-worker"], self.env(), self.bridge_log)

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the agent exited:\n{self.tail(self.bridge_log)}")
            return "scheduler is ready" in self.bridge_log.read_text(errors="replace") and self.heartbeat_since(since)

        wait_for(up, timeout_s, "the agent's node to renew its lease")


@pytest.fixture(scope="module")
def lite_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("lite-cloud")) as cloud:
        yield cloud


@pytest.fixture
def edge_cluster(
    lite_cloud: Cloud, real_settings: Settings, tmp_path: Path, real_redis: redis.Redis,
    docker_client: docker.DockerClient,
) -> Iterator[LiteCluster]:
    """The cloud and a node whose edge processes the test (or ``lite_cluster``, ``full_cluster``) starts."""
    cluster = LiteCluster(lite_cloud, real_settings, tmp_path, real_redis, docker_client, free_port())
    try:
        yield cluster
    finally:
        cluster.close()
        print(cluster.logs())


@pytest.fixture
def lite_cluster(edge_cluster: LiteCluster) -> LiteCluster:
    """The node's edge is one `edgeworkers agent`."""
    edge_cluster.start_agent()
    return edge_cluster


@pytest.fixture
def full_cluster(edge_cluster: LiteCluster) -> LiteCluster:
    """The node's edge is the Procfile's: `edgeworkers agent --no-worker` and `edgeworkers worker`."""
    edge_cluster.start_full()
    return edge_cluster
