"""One place builds Redis clients: the agent Redis's password comes from its file, never from a URL or a log."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.redisconn import RedisPasswordUnreadable, redis_client, redis_kwargs, redis_password


def test_the_password_comes_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "redis-password"
    path.write_text("s3cret\n")
    settings = Settings(redis_password_file=str(path))
    assert redis_password(settings) == "s3cret"
    assert redis_kwargs(settings) == {"password": "s3cret"}
    client = redis_client(settings)
    assert client.connection_pool.connection_kwargs["password"] == "s3cret"
    assert "s3cret" not in repr(client) and "s3cret" not in repr(client.connection_pool)


@pytest.mark.parametrize("setting", ["", "/nonexistent/redis-password"])
def test_no_file_means_no_password(setting: str) -> None:
    assert redis_kwargs(Settings(redis_password_file=setting)) == {}


def test_a_url_with_its_own_password_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "redis-password"
    path.write_text("from-file")
    settings = Settings(redis_url="redis://:from-url@127.0.0.1:6379/0", redis_password_file=str(path))
    assert redis_kwargs(settings) == {}
    assert redis_client(settings).connection_pool.connection_kwargs["password"] == "from-url"


def test_an_unreadable_file_says_so_without_its_content(tmp_path: Path) -> None:
    with pytest.raises(RedisPasswordUnreadable, match="cannot read the Redis password file"):
        redis_password(Settings(redis_password_file=str(tmp_path)))  # a directory: IsADirectoryError


def test_the_brokers_client_authenticates_and_times_out(tmp_path: Path) -> None:
    """Dramatiq builds its pool from a URL alone (a ``password`` beside it is dropped): it must get the process's
    one client, which the wiring hands to every role."""
    from edgeworkers import wiring

    path = tmp_path / "redis-password"
    path.write_text("s3cret\n")
    services = wiring.build(Settings(redis_password_file=str(path), data_dir=tmp_path))
    kwargs = services.broker.client.connection_pool.connection_kwargs
    assert kwargs["password"] == "s3cret" and kwargs["socket_timeout"] > 0
    assert services.broker.client is services.redis and services.store.redis is services.redis


def test_every_client_has_socket_timeouts() -> None:
    kwargs = redis_client(Settings()).connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] > 0 and kwargs["socket_connect_timeout"] > 0
