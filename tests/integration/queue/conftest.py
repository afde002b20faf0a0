"""Fixtures of the queue integration tests (helpers in ``queuekit``)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from queuekit import Worker

from edgeworkers.config import Settings


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
