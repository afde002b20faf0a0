"""Fixtures of the queue integration tests (helpers in ``queuekit``)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from queuekit import HEARTBEAT_TIMEOUT_MS, Worker

from edgeworkers import tasks
from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.pods.desired import Send


@pytest.fixture
def config(real_settings: Settings) -> Settings:
    return real_settings.model_copy(update={"broker_heartbeat_timeout_ms": HEARTBEAT_TIMEOUT_MS})


@pytest.fixture
def start_worker(config: Settings, tmp_path: Path, real_redis: redis.Redis) -> Iterator[Callable[..., Worker]]:
    """``start_worker(processes=1, threads=4, module=..., env=...)`` starts a worker; all are stopped after the test."""
    started: list[Worker] = []

    def start(processes: int = 1, threads: int = 4, **options: Any) -> Worker:
        worker = Worker.start(config, tmp_path / f"worker-{len(started)}.log", processes, threads, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def send(config: Settings) -> Send:
    """Enqueue pod tasks on the test's database (as the CLI does on the configured one)."""
    return tasks.sender(make_broker(config))


@pytest.fixture
def store(real_redis: redis.Redis) -> MetaStore:
    return MetaStore(real_redis)
