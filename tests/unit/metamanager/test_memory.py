"""The agent's Redis at its memory cap, as the logs say it (the gauges read INFO: tests/integration/queue)."""
from __future__ import annotations

import redis

from edgeworkers.metamanager.memory import explain


def test_a_full_redis_is_said_plainly_and_other_failures_keep_their_type() -> None:
    full = redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'.")
    assert explain(full) == ("the agent's Redis is full (its maxmemory reached, policy noeviction): it refuses writes "
                             "until memory is freed: OOM command not allowed when used memory > 'maxmemory'.")
    assert explain(redis.ConnectionError("refused")) == "ConnectionError: refused"
