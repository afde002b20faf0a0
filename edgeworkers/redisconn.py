"""Every client of the agent's Redis is built here, with the agent Redis's password.

The agent's Redis requires a password (``requirepass``), kept in a 0600 file in a 0700 directory that
``ops/services`` makes on its first start (``EDGEWORKERS_REDIS_PASSWORD_FILE``). The password never enters a URL, a
command line or a log line: it is read from the file and handed to redis-py as the connection's password. A URL that
carries a password of its own keeps it; a setting of "" (or a file that does not exist) means no password (the test
Redis on 127.0.0.1:6399 is open and never holds a real node's state).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from edgeworkers.config import Settings


class RedisPasswordUnreadable(RuntimeError):
    """The password file exists but cannot be read (wrong user?)."""


def redis_password(settings: Settings) -> str | None:
    """The agent Redis's password, or None when there is none to use."""
    if not settings.redis_password_file:
        return None
    path = Path(settings.redis_password_file)
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RedisPasswordUnreadable(f"cannot read the Redis password file {path}: {exc.strerror}") from None


def redis_kwargs(settings: Settings) -> dict[str, Any]:
    """The connection arguments that authenticate to ``settings.redis_url`` (none when its URL has a password)."""
    if urlsplit(settings.redis_url).password is not None:
        return {}
    password = redis_password(settings)
    return {"password": password} if password else {}


# No command of the agent blocks in Redis longer than half of this (locks poll; an idle queue consumer's BLPOP, see
# edgeworkers.wakeup, waits a few seconds), so a reply slower than this is a stalled Redis: the call fails (a transient
# fault, retried) instead of hanging a worker thread, a lock renewer or the bridge forever.
SOCKET_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


def redis_client(settings: Settings, **kwargs: Any) -> redis.Redis:
    """A client of ``settings.redis_url``, authenticated, with socket timeouts; ``kwargs`` go to
    ``redis.Redis.from_url``."""
    options = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": CONNECT_TIMEOUT_S, **kwargs}
    return redis.Redis.from_url(settings.redis_url, **redis_kwargs(settings), **options)
