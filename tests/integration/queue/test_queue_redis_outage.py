"""Redis restarted under a busy worker: the task that met the outage is retried once Redis is back, not lost.

The test runs a Redis server of its own (``queuekit.RedisServer``: append-only, on a free port), stopped and started
again by its PID, so the shared test Redis is never touched.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from queuekit import RedisServer, Worker, busybox_pod, node_containers, queues_drained, wait_for

from edgeworkers import tasks
from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.pods import desired
from edgeworkers.redisconn import redis_client
from tests.integration.statuses import pod_status


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
