"""Helpers of the queue integration tests: real `dramatiq edgeworkers.workerprocess` workers, pods, polling.

Each worker runs as its own process group, started and stopped (by PID) by the test that asked for it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import redis

from edgeworkers import constants
from edgeworkers.config import Settings
from edgeworkers.runtime import labels
from tests.polling import wait_for  # noqa: F401  (re-exported to the queue tests)

QUEUES = (constants.QUEUE_POD_ADD, constants.QUEUE_POD_UPDATE, constants.QUEUE_POD_DELETE, constants.QUEUE_POD_SYNC)
HEARTBEAT_TIMEOUT_MS = 5000


def worker_env(config: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        "EDGEWORKERS_NODE_NAME": config.node_name,
        "EDGEWORKERS_REDIS_URL": config.redis_url,
        "EDGEWORKERS_DATA_DIR": str(config.data_dir),
        "EDGEWORKERS_BROKER_HEARTBEAT_TIMEOUT_MS": str(HEARTBEAT_TIMEOUT_MS),
        "EDGEWORKERS_TASK_MIN_BACKOFF_MS": "200",
        "EDGEWORKERS_TASK_MAX_BACKOFF_MS": "2000",
        "EDGEWORKERS_TASK_MAX_RETRIES": "50",
    }


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(
        cls,
        config: Settings,
        log: Path,
        processes: int = 1,
        threads: int = 4,
        module: str = "edgeworkers.workerprocess",
        env: dict[str, str] | None = None,
    ) -> Worker:
        argv = [sys.executable, "-m", "dramatiq", module,
                "--processes", str(processes), "--threads", str(threads), "--queues", *QUEUES]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, env={**worker_env(config), **(env or {})}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return cls(process, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (the dramatiq master and its worker processes: its own process group)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


def busybox_pod(name: str, command: str = "sleep 3600", **spec: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "busybox", "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [container], **spec},
    }


def node_containers(client: docker.DockerClient, node: str, pod: str | None = None) -> list[Any]:
    """Every container (any state) labelled for ``node`` (and pod name ``pod``).

    The SDK inspects each listed container; one a worker removed in between raises NotFound: list again."""
    filters = [f"{labels.NODE}={node}"] + ([f"{labels.POD_NAME}={pod}"] if pod else [])
    for _ in range(10):
        try:
            return client.containers.list(all=True, filters={"label": filters})
        except docker.errors.NotFound:
            continue
    return client.containers.list(all=True, filters={"label": filters})


def running_names(containers: list[Any]) -> set[str]:
    return {c.labels[labels.CONTAINER_NAME] for c in containers if c.status == "running"}


def queues_drained(client: redis.Redis, queues: tuple[str, ...] = QUEUES[:3]) -> bool:
    """No message waiting, delayed or in flight on ``queues``."""
    return all(client.hlen(f"dramatiq:{q}.msgs") == 0 and client.hlen(f"dramatiq:{q}.DQ.msgs") == 0 for q in queues)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private redis-server keeping its data in ``directory`` across a stop and a start; ``options``: more of its
    command line (``--maxmemory 16mb`` ...)."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.directory, self.port, self.options = directory, free_port(), options
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--appendonly", "yes", "--save", "", *self.options]  # fmt: skip
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _answers(client), 10, "the private Redis to answer", interval_s=0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a clean shutdown writes the append-only file
            self.process.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
