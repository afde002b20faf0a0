"""Fixtures shared by every test.

Real services: ``ops/test`` starts a test Redis (127.0.0.1:6399, no persistence, 256 databases) and dockerd.
Each test session claims an empty Redis database of its own, so concurrent runs never share keys.
Every test's containers carry the label ``io.edgeworkers.node=<its unique node name>`` and are removed by it.
"""
from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import fakeredis
import pytest
import redis

from edgeworkers.config import Settings
from edgeworkers.runtime import labels

TEST_REDIS = os.environ.get("EDGEWORKERS_TEST_REDIS", "redis://127.0.0.1:6399")
# The test Redis is open: tests and the processes they start send no password (the agent Redis's stays unread).
os.environ.setdefault("EDGEWORKERS_REDIS_PASSWORD_FILE", "")
CLAIM_KEY = "edgeworkers:test-claim"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@contextmanager
def claimed_database() -> Iterator[str]:
    """URL of an empty database of the real test Redis, claimed (its claim key set) until the block ends, then
    emptied."""
    try:
        redis.Redis.from_url(f"{TEST_REDIS}/0").ping()
    except redis.ConnectionError as exc:  # fail loudly: integration tests need the real server
        pytest.fail(f"test Redis at {TEST_REDIS} is not running (start it with ops/services): {exc}")
    for db in random.sample(range(1, 256), 255):
        client = redis.Redis.from_url(f"{TEST_REDIS}/{db}")
        if client.dbsize() == 0 and client.set(CLAIM_KEY, os.getpid(), nx=True):
            try:
                yield f"{TEST_REDIS}/{db}"
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    pytest.fail("no free database on the test Redis")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of an empty database of the real test Redis, claimed for this session and emptied after."""
    with claimed_database() as url:
        yield url


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's real Redis database; keys other than the claim are removed after each test."""
    client = redis.Redis.from_url(redis_url)
    yield client
    for key in client.scan_iter():
        if key != CLAIM_KEY.encode():
            client.delete(key)
    client.close()


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"dockerd is not running (start it with ops/services): {exc}")
    yield client
    client.close()


@pytest.fixture
def node_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A node name unique to this test; containers labelled with it are removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    if request.node.get_closest_marker("integration"):
        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"label": f"{labels.NODE}={name}"}):
            container.remove(force=True)
        client.close()


@pytest.fixture
def settings(node_name: str, tmp_path: Path) -> Settings:
    """Settings for a unit test: a unique node, data under tmp_path."""
    return Settings(
        node_name=node_name,
        data_dir=tmp_path / "data",
        cloud_data_dir=tmp_path / "cloud",
    )


@pytest.fixture
def real_settings(settings: Settings, redis_url: str) -> Settings:
    """Settings for an integration test: the session's real Redis database."""
    return settings.model_copy(update={"redis_url": redis_url})
