"""The waking broker on fakeredis (with its Lua): enqueue wakes an idle consumer; the consumer blocks instead of
polling, yet still fetches (heartbeat, maintenance), honours delayed messages' etas, its prefetch and a stop."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dramatiq
import fakeredis
import pytest
from dramatiq.common import dq_name

from edgeworkers import wakeup
from edgeworkers.wakeup import STOPPING_POLL_S, WAKE_TOKENS, WakingConsumer, WakingRedisBroker

QUEUE = "pod_add"


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def make(server: fakeredis.FakeServer) -> Callable[..., WakingRedisBroker]:
    """``make(**options)``: a broker (a worker process of its own) on the shared fake server."""

    def make(socket_timeout: float = 30, **options: Any) -> WakingRedisBroker:
        client = fakeredis.FakeRedis(server=server, socket_timeout=socket_timeout)
        broker = WakingRedisBroker(client=client, middleware=[], **{"heartbeat_timeout": 15_000, **options})
        broker.declare_queue(QUEUE)
        return broker

    return make


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def message(n: int = 0) -> dramatiq.Message:
    return dramatiq.Message(queue_name=QUEUE, actor_name="add_pod", args=(n,), kwargs={}, options={})


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    begin = time.monotonic()
    result = call()
    return result, time.monotonic() - begin


def test_an_enqueue_stores_the_task_and_a_wake_token_trimmed_and_expiring(make, server):
    broker = make()
    for n in range(20):
        broker.enqueue(message(n))
    client = fakeredis.FakeRedis(server=server)
    assert client.llen(f"dramatiq:{QUEUE}") == 20 and client.hlen(f"dramatiq:{QUEUE}.msgs") == 20
    assert client.llen(broker.wake_key(QUEUE)) == WAKE_TOKENS
    assert 0 < client.pttl(broker.wake_key(QUEUE)) <= 30_000


def test_an_enqueue_after_redis_forgot_the_script_lands_once(make, server):
    broker = make()
    broker.enqueue(message(1))
    fakeredis.FakeRedis(server=server).script_flush()  # as after a restart of Redis
    broker.enqueue(message(2))
    consumer = broker.consume(QUEUE, prefetch=10)
    assert [next(consumer).args for _ in range(2)] == [(1,), (2,)]


def entering_wait(consumer: WakingConsumer) -> threading.Event:
    """Set when ``consumer`` starts a wait (it computes the wait's timeout just before it blocks)."""
    entered = threading.Event()
    timeout = consumer._timeout

    def traced() -> float:
        entered.set()
        return timeout()

    consumer._timeout = traced  # type: ignore[method-assign]
    return entered


def test_an_idle_consumer_wakes_on_an_enqueue_long_before_its_wait_ends(make, pool):
    broker = make()
    assert broker.wait_s == 5
    consumer = broker.consume(QUEUE, prefetch=8)
    entered = entering_wait(consumer)
    waiting = pool.submit(timed, lambda: next(consumer))
    assert entered.wait(3)  # it blocks: what is measured is that it returns at the enqueue, not after 5 s
    make().enqueue(message(7))  # from another process
    assert waiting.result(timeout=3)[1] < 2
    assert next(consumer).args == (7,)


def test_a_task_enqueued_between_an_empty_fetch_and_the_wait_is_not_missed(make, monkeypatch):
    broker, sender = make(), make()
    fetch = broker.fetch

    def fetch_then_enqueue(*args, **kwargs):
        result = fetch(*args, **kwargs)
        if not result:
            sender.enqueue(message(3))  # lands before the consumer blocks
        return result

    monkeypatch.setattr(broker, "fetch", fetch_then_enqueue)
    consumer = broker.consume(QUEUE, prefetch=8)
    assert timed(lambda: next(consumer))[1] < 1  # the token was already there
    monkeypatch.undo()
    assert next(consumer).args == (3,)


def test_a_fetch_that_fills_the_prefetch_wakes_a_peer_for_the_rest(make, server):
    broker = make()
    for n in range(3):
        broker.enqueue(message(n))
    client = fakeredis.FakeRedis(server=server)
    client.delete(broker.wake_key(QUEUE))
    consumer = broker.consume(QUEUE, prefetch=2)
    assert next(consumer).args == (0,)
    assert client.llen(broker.wake_key(QUEUE)) == 1  # one more task waits: another consumer is woken for it


def test_an_idle_consumer_still_fetches_and_its_idle_fetch_redelivers_a_dead_workers_tasks(make, server, monkeypatch):
    now = [1_000_000]  # the scripts' clock (ms)
    monkeypatch.setattr(wakeup, "current_millis", lambda: now[0])
    dead = make(heartbeat_timeout=300, maintenance_chance=0)
    dead.enqueue(message(5))
    taken = next(dead.consume(QUEUE, prefetch=1))  # fetched, never acked: its worker is SIGKILLed
    assert taken.args == (5,)
    broker = make(heartbeat_timeout=300, maintenance_chance=0)  # no maintenance but the idle one
    assert broker.wait_s == pytest.approx(0.1)
    consumer = broker.consume(QUEUE, prefetch=1)
    fakeredis.FakeRedis(server=server).delete(broker.wake_key(QUEUE))
    now[0] += 1000  # the dead worker's heartbeat is older than the timeout
    assert next(consumer) is None  # a fetch (a heartbeat), then a wait that times out
    assert next(consumer).args == (5,)  # the next fetch ran the queue's maintenance


def test_a_delay_queue_consumer_waits_only_until_its_earliest_eta(make, server):
    broker = make()
    broker.enqueue(message(9), delay=400)
    consumer = broker.consume(dq_name(QUEUE), prefetch=100)
    delayed = next(consumer)
    fakeredis.FakeRedis(server=server).delete(broker.wake_key(dq_name(QUEUE)))  # its token, now stale
    assert delayed.options["eta"] and broker.wait_s == 5
    result, waited = timed(lambda: next(consumer))
    assert result is None and 0.2 < waited < 2  # returns at the eta, when Dramatiq moves it to the queue
    consumer.ack(delayed)
    assert consumer._timeout() == broker.wait_s


def test_a_consumer_with_a_full_prefetch_waits_for_an_ack_not_a_poll(make, pool):
    broker = make()
    for n in range(2):
        broker.enqueue(message(n))
    consumer = broker.consume(QUEUE, prefetch=1)
    first = next(consumer)
    entered = entering_wait(consumer)
    waiting = pool.submit(timed, lambda: next(consumer))
    assert entered.wait(3)  # it waits for the ack
    consumer.ack(first)  # a worker thread is done with it
    assert waiting.result(timeout=3)[1] < 2
    assert next(consumer).args == (1,)


def test_requeued_tasks_wake_another_consumer(make, server):
    broker = make()
    broker.enqueue(message(4))
    consumer = broker.consume(QUEUE, prefetch=8)
    taken = next(consumer)
    client = fakeredis.FakeRedis(server=server)
    client.delete(broker.wake_key(QUEUE))
    consumer.requeue([taken])  # a stopping worker gives back its prefetch
    assert client.llen(broker.wake_key(QUEUE)) == 1 and client.llen(f"dramatiq:{QUEUE}") == 1


def test_a_stopping_worker_releases_its_blocked_consumers_at_once(make, pool):
    broker = make()
    consumers = [broker.consume(QUEUE, prefetch=8), broker.consume(dq_name(QUEUE), prefetch=8)]
    entered = [entering_wait(c) for c in consumers]
    waiting = [pool.submit(timed, lambda c=c: next(c)) for c in consumers]
    assert all(e.wait(3) for e in entered)  # they block
    broker.emit_before("worker_shutdown", None)  # what dramatiq.Worker.stop does first
    assert all(w.result(timeout=3)[1] < 2 for w in waiting)
    assert timed(lambda: next(consumers[0]))[1] < STOPPING_POLL_S + 1  # polls briefly until its thread ends
    broker.emit_before("worker_boot", None)  # a worker started again on this broker
    assert not broker.stopping.is_set()


def test_the_wait_stays_within_the_heartbeat_timeout_and_the_socket_timeout(make):
    assert make(heartbeat_timeout=3000).wait_s == 1
    assert make(socket_timeout=4).wait_s == 2
    assert make(max_wait_s=0.5).wait_s == 0.5


def test_a_closed_consumer_gives_its_connection_back(make):
    broker = make(max_wait_s=0.05)
    consumer = broker.consume(QUEUE, prefetch=1)
    assert isinstance(consumer, WakingConsumer) and next(consumer) is None
    pool = broker.client.connection_pool
    assert len(pool._in_use_connections) == 1  # held for its waits
    consumer.close()
    assert not pool._in_use_connections


def test_a_consumer_in_another_thread_is_woken_by_each_of_many_enqueues(make, pool):
    """20 enqueues one by one, each while the consumer waits: each picked up at once (a wait is 5 s)."""
    broker, sender = make(), make()
    consumer = broker.consume(QUEUE, prefetch=8)
    got: list[float] = []

    def consume() -> None:
        while len(got) < 20:
            item = next(consumer)
            if item is not None:
                got.append(time.monotonic() - item.args[0])
                consumer.ack(item)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    for _ in range(20):
        time.sleep(0.02)
        sender.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name="a", args=(time.monotonic(),), kwargs={}, options={}))
    thread.join(10)
    assert len(got) == 20 and max(got) < 1
