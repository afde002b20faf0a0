"""Fixtures shared by the integration tests that run pod workers on the test's Redis database (queue, lite, scheduler):
the settings with a short broker heartbeat, the sender of pod tasks and the MetaStore. A directory may override any."""
from __future__ import annotations

import pytest
import redis

from edgeworkers import tasks
from edgeworkers.broker import make_broker
from edgeworkers.config import Settings
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.pods.desired import Send
from edgeworkers.redisconn import redis_client
from tests.integration.queue.queuekit import HEARTBEAT_TIMEOUT_MS


@pytest.fixture
def config(real_settings: Settings) -> Settings:
    """The test's settings, with a short heartbeat: a killed worker's tasks are redelivered within seconds."""
    return real_settings.model_copy(update={"broker_heartbeat_timeout_ms": HEARTBEAT_TIMEOUT_MS})


@pytest.fixture
def send(config: Settings) -> Send:
    """Enqueue pod tasks on the test's database (as the CLI does on the configured one)."""
    return tasks.sender(make_broker(config, redis_client(config)))


@pytest.fixture
def store(real_redis: redis.Redis) -> MetaStore:
    return MetaStore(real_redis)
