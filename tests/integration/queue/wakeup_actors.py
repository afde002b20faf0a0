"""A worker module for test_wakeup: one actor, ``stamp``, that records when it ran (``time.time()``) in Redis.

With ``STOCK_BROKER=1`` the worker uses Dramatiq's own RedisBroker, which polls (as the agent's broker did before
it woke on enqueue): the baseline of the idle test.
"""
from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from edgeworkers import constants
from edgeworkers.broker import make_broker
from edgeworkers.config import settings
from edgeworkers.redisconn import redis_client

STAMPS = "wakeup-test:stamps"
QUEUE = constants.QUEUE_POD_SYNC

config = settings()
if os.environ.get("STOCK_BROKER"):
    dramatiq.set_broker(RedisBroker(client=redis_client(config), heartbeat_timeout=config.broker_heartbeat_timeout_ms))
else:
    make_broker(config, redis_client(config))
client = redis_client(config)


@dramatiq.actor(actor_name="stamp", queue_name=QUEUE)
def stamp(n: int) -> None:
    client.rpush(STAMPS, f"{n} {time.time()}")
