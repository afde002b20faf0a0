"""Fixtures of the scheduler's integration tests: a real `dramatiq` worker and a real `python -m scheduler`, on the
test's Redis database and dockerd, with short intervals and back-off (settings) so each test takes seconds."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from edgeworkers.config import Settings
from tests.integration.queue.queuekit import Worker, worker_env
from tests.polling import wait_for

# Fast enough for tests, as settings (the same code paths as the defaults).
FAST = {
    "EDGEWORKERS_BACKOFF_INITIAL_S": "1",
    "EDGEWORKERS_BACKOFF_MAX_S": "8",
    "EDGEWORKERS_ORPHAN_CLEANUP_PERIOD_S": "2",
    "EDGEWORKERS_METRICS_PORT": "0",
    # Never image GC on a shared machine's Docker from these tests (test_scheduler_gc.py runs it on its own images).
    "EDGEWORKERS_IMAGE_GC_HIGH_THRESHOLD_PERCENT": "100",
}


@dataclass
class Scheduler:
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, config: Settings, log: Path, env: dict[str, str]) -> Scheduler:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "scheduler"], env={**worker_env(config), **FAST, **env},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        scheduler = cls(process, log)
        wait_for(lambda: "scheduler is ready" in scheduler.output() or process.poll() is not None, 30, "the scheduler")
        assert process.poll() is None, scheduler.output()
        return scheduler

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def agent_processes(config: Settings, tmp_path: Path, real_redis: redis.Redis) -> Iterator[Callable[..., Any]]:
    """``agent_processes(**env)`` starts one worker and one scheduler with the FAST settings (plus ``env``);
    both are stopped after the test."""
    started: list[Any] = []

    def start(**env: str) -> tuple[Worker, Scheduler]:
        worker = Worker.start(config, tmp_path / "worker.log", env={**FAST, **env})
        started.append(worker)
        scheduler = Scheduler.start(config, tmp_path / "scheduler.log", env)
        started.append(scheduler)
        return worker, scheduler

    yield start
    for process in reversed(started):
        process.stop()


def hold(condition: Callable[[], Any], seconds: float, what: str, interval_s: float = 0.2) -> None:
    """Poll ``condition`` for ``seconds``: it must stay truthy throughout."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), f"{what} stopped holding"
        time.sleep(interval_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
