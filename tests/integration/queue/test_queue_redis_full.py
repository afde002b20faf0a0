"""The agent's Redis full (its maxmemory reached; policy noeviction, as ``ops/services`` starts it) under a busy worker:
the task whose writes Redis refuses is logged in one clear line and retried, the worker never crashes, the refusals
show in the metrics, and once memory is freed the pod runs and its status is stored.

The test runs a capped Redis server of its own (``queuekit.RedisServer``), so the shared test Redis is never touched."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from queuekit import RedisServer, Worker, busybox_pod, node_containers, queues_drained, wait_for

from edgeworkers import tasks
from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager import memory
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.pods import desired
from edgeworkers.redisconn import redis_client
from tests.integration.statuses import pod_status

CAP = 64 * 1024 * 1024
FILLER = 8
CHUNK = b"x" * (512 * 1024)


@pytest.fixture
def capped_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, "--maxmemory", str(CAP), "--maxmemory-policy", "noeviction")
    server.start()
    yield server
    server.stop()


def reach_the_cap(client: redis.Redis) -> int:
    """Bring the cap down to 1 MB under what Redis uses (4 MB of it filler), as if the node's state had grown to it;
    return the cap. Redis then refuses every write until the filler is deleted."""
    cap = int(client.info("memory")["used_memory"]) - 1024 * 1024
    client.config_set("maxmemory", cap)
    with pytest.raises(memory.StoreFull):
        client.set("one-more", b"x")
    return cap


def test_a_task_refused_by_a_full_redis_is_retried_once_there_is_room(
    capped_redis: RedisServer, config: Settings, docker_client, node_name: str, tmp_path: Path
) -> None:
    private = config.model_copy(update={"redis_url": capped_redis.url})
    client = redis.Redis.from_url(capped_redis.url)
    store = MetaStore(client)
    worker = Worker.start(private, tmp_path / "worker.log", 1, 2, module="slow_actors",
                          env={"SLOW_CREATE_S": "3", "EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK": "true"})
    try:
        desired.apply_pod(store, tasks.sender(make_broker(private, redis_client(private))),
                          busybox_pod("steady", hostNetwork=True))  # fmt: skip

        for index in range(FILLER):
            client.set(f"filler:{index}", CHUNK)
        # The add is in flight (sandbox made, app container on its slow way) when Redis reaches its cap.
        wait_for(lambda: node_containers(docker_client, node_name, "steady"), 30, "the sandbox of the add")
        cap = reach_the_cap(client)
        wait_for(lambda: "pod default/steady: the agent's Redis is full" in worker.output(), 30,
                 "the add failing on the full Redis, in one line")
        wait_for(lambda: "cannot re-enqueue" in worker.output(), 10, "its retry waiting for room")
        gauges = memory.gauges(client)
        assert gauges["edgeworkers_redis_memory_max_bytes"][1] == {(): float(cap)}
        assert gauges["edgeworkers_redis_memory_used_bytes"][1][()] > cap
        assert gauges["edgeworkers_redis_oom_rejections"][1][()] >= 2
        wait_for(lambda: "Consumer encountered a connection error: the agent's Redis is full" in worker.output(), 10,
                 "its consumers saying it in one line")
        assert worker.process.poll() is None
        assert pod_status(store, "default/steady") is None  # refused: the status waits

        client.delete(*(f"filler:{index}" for index in range(FILLER)))  # room again: the retry runs
        status = wait_for(lambda: pod_status(store, "default/steady"), 60, "the retried add storing the status")
        assert status["phase"] == "Running"
        wait_for(lambda: queues_drained(client), 30, "the queues drained")
        assert worker.process.poll() is None
        assert "Traceback" not in worker.output()
    finally:
        worker.stop()
