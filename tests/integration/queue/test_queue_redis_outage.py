"""Redis restarted under a busy worker: the task that met the outage is retried once Redis is back, not lost.

The test runs a Redis server of its own (append-only, on a free port), stopped and started again by its PID,
so the shared test Redis is never touched.
"""
from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from queuekit import Worker, busybox_pod, node_containers, queues_drained, wait_for

from edgeworkers import tasks
from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.pods import desired
from edgeworkers.redisconn import redis_client
from tests.integration.statuses import pod_status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private redis-server keeping its data in ``directory`` across a stop and a start."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--appendonly", "yes", "--save", ""]  # fmt: skip
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


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def slow_worker(config: Settings, private_redis: RedisServer, tmp_path: Path) -> Iterator[Callable[[], Worker]]:
    started: list[Worker] = []

    def start() -> Worker:
        settings = config.model_copy(update={"redis_url": private_redis.url})
        worker = Worker.start(settings, tmp_path / "worker.log", 1, 2, module="slow_actors", env={"SLOW_CREATE_S": "3"})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def test_a_task_failing_while_redis_restarts_is_retried_once_it_is_back(
    private_redis, slow_worker, config, docker_client, node_name
):
    client = redis.Redis.from_url(private_redis.url)
    store = MetaStore(client)
    worker = slow_worker()
    private = config.model_copy(update={"redis_url": private_redis.url})
    desired.apply_pod(store, tasks.sender(make_broker(private, redis_client(private))),
                      busybox_pod("steady"))  # fmt: skip

    # The add is in flight (sandbox made, app container on its slow way): Redis goes away and comes back.
    wait_for(lambda: node_containers(docker_client, node_name, "steady"), 30, "the sandbox of the add")
    private_redis.stop()
    wait_for(lambda: "ConnectionError" in worker.output(), 30, "the add failing on Redis")
    private_redis.start()

    # Its retry was kept: the status (written last) arrives, and no task is left behind.
    status = wait_for(lambda: pod_status(store, "default/steady"), 60, "the retried add storing the status")
    assert status["phase"] == "Running"
    wait_for(lambda: queues_drained(client), 30, "the queues drained")
    assert "cannot re-enqueue" in worker.output()
    assert worker.process.poll() is None
