"""Back-off stores: the in-memory one and the Redis one (fakeredis here; same JSON as on the real server)."""

from __future__ import annotations

import json

import fakeredis
import pytest

from edgeworkers.constants import KEY_BACKOFF
from edgeworkers.pods.backoff import (
    PULL_SCOPE,
    BackoffEntry,
    BackoffStore,
    MemoryBackoffStore,
    RedisBackoffStore,
    pull_key,
)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, fake_redis: fakeredis.FakeRedis) -> BackoffStore:
    return MemoryBackoffStore() if request.param == "memory" else RedisBackoffStore(fake_redis)


def test_an_entry_is_read_back_per_pod_and_name(store: BackoffStore) -> None:
    assert store.get("u1", "app") is None
    store.put("u1", "app", BackoffEntry(delay=20, since=100.5))
    store.put(PULL_SCOPE, pull_key("busybox:1.28"), BackoffEntry(delay=10, since=7))
    assert store.get("u1", "app") == BackoffEntry(20, 100.5)
    assert store.get(PULL_SCOPE, pull_key("busybox:1.28")) == BackoffEntry(10, 7)
    assert store.get("u2", "app") is None


def test_delete_and_forget_pod(store: BackoffStore) -> None:
    for uid, name in [("u1", "a"), ("u1", "b"), ("u2", "a")]:
        store.put(uid, name, BackoffEntry(10, 0))
    store.delete("u1", "a")
    assert store.get("u1", "a") is None and store.get("u1", "b") is not None
    store.forget_pod("u1")
    assert store.get("u1", "b") is None
    assert store.get("u2", "a") == BackoffEntry(10, 0)


def test_redis_entries_are_json_under_the_backoff_prefix_and_expire(fake_redis: fakeredis.FakeRedis) -> None:
    RedisBackoffStore(fake_redis, ttl_s=60).put("u1", "app", BackoffEntry(40, 123.0))
    key = f"{KEY_BACKOFF}:u1/app"
    assert json.loads(fake_redis.get(key)) == {"delay": 40, "since": 123.0}
    assert 0 < fake_redis.pttl(key) <= 60_000


def test_state_survives_a_new_store_on_the_same_redis(fake_redis: fakeredis.FakeRedis) -> None:
    RedisBackoffStore(fake_redis).put("u1", "app", BackoffEntry(80, 1.0))
    assert RedisBackoffStore(fake_redis).get("u1", "app") == BackoffEntry(80, 1.0)
