"""The agent's Redis at its memory cap: ``ops/services`` starts it with ``maxmemory`` and the ``noeviction`` policy
(evicting would silently drop desired pods, locks or queued tasks), so once full it refuses every write with
``OOM command not allowed when used memory > 'maxmemory'`` while reads and deletes go on.

The agent treats that refusal as a transient fault: a task is retried with back-off (its re-enqueue waits for room, as
for a Redis away), a loop backs off, and the log says what happened (``explain``). The metrics endpoint shows the
memory used, the cap, and the writes Redis refused for it since it started (``gauges``, from ``INFO``: every process's
refusals, counted by the server itself).
"""
from __future__ import annotations

from typing import Any

import redis

# Redis's refusal of a write at its memory cap.
StoreFull = redis.exceptions.OutOfMemoryError
FULL = ("the agent's Redis is full (its maxmemory reached, policy noeviction): it refuses writes until memory is "
        "freed")


def explain(exc: BaseException) -> str:
    """A failure as a log line shows it (type and message); the agent's Redis at its memory cap said plainly."""
    if isinstance(exc, StoreFull):
        return f"{FULL}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def gauges(client: redis.Redis) -> dict[str, tuple[str, dict[tuple[str, ...], float], list[str]]]:
    """The Redis memory gauges for ``metrics.CallbackCollector``."""
    memory: dict[str, Any] = client.info("memory")
    refused = (client.info("errorstats").get("errorstat_OOM") or {}).get("count", 0)
    return {
        "edgeworkers_redis_memory_used_bytes": ("Memory the agent's Redis uses.",
                                                {(): float(memory.get("used_memory", 0))}, []),
        "edgeworkers_redis_memory_max_bytes": ("The agent Redis's maxmemory (0: no cap).",
                                               {(): float(memory.get("maxmemory", 0))}, []),
        "edgeworkers_redis_oom_rejections": ("Writes the agent's Redis refused at its memory cap since it started.",
                                             {(): float(refused)}, []),
    }  # fmt: skip
