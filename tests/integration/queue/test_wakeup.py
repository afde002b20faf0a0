"""Idle workers wake on enqueue (edgeworkers.wakeup): real `dramatiq` worker processes on the real Redis.

The precise latency belongs to ops/bench/pods.py; here a generous bound, and the Redis commands of an idle worker
beside those of Dramatiq's polling broker (``wakeup_actors`` with ``STOCK_BROKER=1``), counted by MONITOR on the
test's own database.
"""
from __future__ import annotations

import statistics
import threading
import time
from urllib.parse import urlsplit

import dramatiq
import redis
from queuekit import wait_for
from wakeup_actors import QUEUE, STAMPS

from edgeworkers.broker import make_broker
from edgeworkers.redisconn import redis_client

# The stamp actor's queue and its delay queue: the worker's consumers.
CONSUMERS = 2


def database(url: str) -> int:
    return int(urlsplit(url).path.strip("/"))


def blocked_consumers(client: redis.Redis, db: int) -> int:
    """Connections to ``db`` blocked in BLPOP now: idle consumers."""
    return sum(1 for c in client.client_list() if c["db"] == str(db) and c["cmd"] == "blpop" and "b" in c["flags"])


def stamp(broker: dramatiq.Broker, n: int) -> None:
    broker.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name="stamp", args=(n,), kwargs={}, options={}))


def commands_on(url: str, seconds: float) -> list[str]:
    """The commands that clients of ``url``'s database send during ``seconds`` (MONITOR sees the whole server:
    other databases and Lua's own calls are left out). An ECHO on database 0 every 0.1 s keeps the stream moving."""
    db = database(url)
    server = url.rsplit("/", 1)[0]
    watcher, pinger = redis.Redis.from_url(f"{server}/0"), redis.Redis.from_url(f"{server}/0")
    seen: list[str] = []
    end = time.monotonic() + seconds
    stop = threading.Event()

    def ping() -> None:
        while not stop.wait(0.1):
            pinger.echo("wakeup-test")

    thread = threading.Thread(target=ping, daemon=True)
    with watcher.monitor() as monitor:
        thread.start()
        try:
            while time.monotonic() < end:
                command = monitor.next_command()
                if command["db"] == db and command["client_type"] != "lua":
                    seen.append(command["command"].split(" ", 1)[0].lower())
        finally:
            stop.set()
            thread.join()
    watcher.close()
    pinger.close()
    return seen


def test_an_idle_worker_picks_up_each_task_at_once(start_worker, config, real_redis):
    db = database(config.redis_url)
    start_worker(threads=2, module="wakeup_actors")
    broker = make_broker(config, redis_client(config))
    delays = []
    for n in range(20):
        wait_for(lambda: blocked_consumers(real_redis, db) == CONSUMERS, 30, "the worker's consumers idle")
        sent = time.time()
        stamp(broker, n)
        wait_for(lambda: real_redis.llen(STAMPS) == n + 1, 10, f"task {n} run")
        delays.append(float(real_redis.lindex(STAMPS, n).split()[1]) - sent)
    p50 = statistics.median(delays)
    print(f"enqueue -> actor running, idle worker: p50 {p50 * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms")
    assert p50 < 0.1  # a blocked consumer is woken at once; Dramatiq's poll (200 ms cap) gave ~100-150 ms


def test_an_idle_worker_makes_almost_no_redis_calls_unlike_dramatiqs_polling(start_worker, config, real_redis):
    db = database(config.redis_url)
    heartbeat = {"EDGEWORKERS_BROKER_HEARTBEAT_TIMEOUT_MS": "15000"}  # the default: a consumer fetches every 5 s
    waking = start_worker(threads=2, module="wakeup_actors", env=heartbeat)
    wait_for(lambda: blocked_consumers(real_redis, db) == CONSUMERS, 30, "the worker's consumers idle")
    woken = commands_on(config.redis_url, 5)
    waking.stop()
    start_worker(threads=2, module="wakeup_actors", env={**heartbeat, "STOCK_BROKER": "1", "dramatiq_worker_timeout": "200"})
    wait_for(lambda: "evalsha" in commands_on(config.redis_url, 1), 30, "the polling worker up")
    polled = commands_on(config.redis_url, 5)
    print(f"idle worker, 5 s: {len(woken)} Redis commands ({sorted(set(woken))}); Dramatiq polling at 200 ms: {len(polled)}")
    # Each consumer: one fetch and one BLPOP per 5 s wait (a boundary may add one of each).
    assert len(woken) <= CONSUMERS * 2 * 2
    assert len(polled) >= 10 * len(woken)
