"""Dramatiq's Redis broker whose workers wake when a task is enqueued, instead of polling Redis.

Dramatiq's Redis consumer (one per queue and worker process) sleeps and fetches again whenever a fetch finds nothing:
an idle edge polls Redis many times a second, and a new pod waits for the next poll. Here every enqueue also pushes a
token on the queue's wake list, ``<namespace>:<queue>.wake``, in the same MULTI/EXEC as the enqueue (so a woken
consumer finds the task). A consumer whose fetch finds nothing blocks on that list (BLPOP, on a connection of its
own) and fetches again as soon as a token arrives:

- Redis hands each pushed token to one blocked consumer, so one enqueue wakes one idle consumer. A token pushed
  while no consumer waits stays in the list (trimmed to ``WAKE_TOKENS``, expiring after ``WAKE_TTL_MS``), so a
  consumer that fetched just before the enqueue still wakes at once. A fetch that fills the consumer's prefetch
  pushes a token for a peer: a burst never waits on a sleeping consumer. Tasks put back on a queue (a stopping
  worker's prefetch) push one too.
- A blocked consumer still fetches at least every ``wait_s`` (at most a third of the heartbeat timeout): Dramatiq's
  fetch script records the worker's heartbeat, and that idle fetch also runs the queue's maintenance (requeueing
  the tasks of a dead worker), so a SIGKILLed worker's tasks are redelivered within heartbeat timeout + ``wait_s``.
- A delay queue's consumer (``X.DQ``: retries with back-off) waits at most until the earliest eta of the messages it
  holds, when Dramatiq's consumer thread moves the message to ``X``.
- A consumer whose prefetch is full waits for one of its tasks to be acknowledged (an event in the process) rather
  than polling.
- When the worker stops, blocked consumers are released at once (a token on each one's own key) and poll briefly
  until their thread ends, as Dramatiq's do.

Everything else (the fetch, ack, nack and maintenance script, heartbeats, retries, time limits) is Dramatiq's.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from typing import Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from edgeworkers import watchdog

log = logging.getLogger(__name__)

# Tokens kept on a wake list: one per idle consumer to wake is enough; a token older than a consumer's wait is
# redundant (every consumer fetches by then anyway).
WAKE_TOKENS = 8
WAKE_TTL_MS = 30_000
# A blocked consumer fetches at least this often (less when the heartbeat timeout or the socket timeout is short).
MAX_WAIT_S = 5.0
# How often a consumer polls once its worker is stopping (until its thread ends).
STOPPING_POLL_S = 0.1


class WakingRedisBroker(RedisBroker):
    """A ``RedisBroker`` whose enqueue wakes an idle consumer, and whose consumers block instead of polling."""

    def __init__(self, *, max_wait_s: float = MAX_WAIT_S, **options: Any) -> None:
        super().__init__(**options)
        socket_timeout = self.client.connection_pool.connection_kwargs.get("socket_timeout") or float("inf")
        self.wait_s = min(max_wait_s, self.heartbeat_timeout / 3000, socket_timeout / 2)
        self.stopping = threading.Event()
        self._consumers: weakref.WeakSet[WakingConsumer] = weakref.WeakSet()
        self._consumers_lock = threading.Lock()
        self.add_middleware(ReleaseOnShutdown())
        self.add_middleware(ReadyOnBoot())

    @property
    def consumer_class(self) -> type[WakingConsumer]:
        return WakingConsumer

    def wake_key(self, queue_name: str) -> str:
        return f"{self.namespace}:{queue_name}.wake"

    def _dispatch_args(self, command: str, queue_name: str, *args: Any, maintenance: bool = False) -> list[Any]:
        """The arguments of Dramatiq's dispatch script, as ``RedisBroker._dispatch`` builds them (see dispatch.lua)."""
        do_maintenance = int(maintenance) or self._should_do_maintenance(command)
        return [command, current_millis(), queue_name, self.broker_id, self.heartbeat_timeout, self.dead_message_ttl,
                do_maintenance, self._max_unpack_size(), *args]  # fmt: skip

    def do_enqueue(self, queue_name: str, message_id: str, data: bytes) -> None:
        """Dramatiq's enqueue and a wake token, in one transaction (``RedisBroker.enqueue`` calls this)."""
        script = self.scripts["dispatch"]
        args = self._dispatch_args("enqueue", queue_name, message_id, data)
        for attempt in (1, 2):
            pipe = self.client.pipeline()
            pipe.evalsha(script.sha, 1, self.namespace, *args)
            push_token(pipe, self.wake_key(queue_name))
            try:
                pipe.execute()
                return
            except redis.exceptions.NoScriptError:  # a restarted Redis forgot the script (the token is harmless)
                if attempt == 2:
                    raise
                script.sha = self.client.script_load(script.script)

    def fetch(self, queue_name: str, count: int, *, maintenance: bool = False) -> list[bytes | None]:
        """Dramatiq's fetch of up to ``count`` messages; ``maintenance`` runs the queue's maintenance with it."""
        args = self._dispatch_args("fetch", queue_name, count, maintenance=maintenance)
        return self.scripts["dispatch"](args=args, keys=[self.namespace])

    def wake(self, queue_name: str) -> None:
        """Wake one idle consumer of ``queue_name`` (or the next to wait)."""
        pipe = self.client.pipeline()
        push_token(pipe, self.wake_key(queue_name))
        pipe.execute()

    def release_waiting(self) -> None:
        """The worker is stopping: consumers stop blocking, and those blocked now return at once."""
        self.stopping.set()
        with self._consumers_lock:
            consumers = list(self._consumers)
        pipe = self.client.pipeline()
        for consumer in consumers:
            push_token(pipe, consumer.own_key)
        try:
            pipe.execute()
        except redis.RedisError as exc:  # Redis away: blocked consumers return by their own timeout
            log.warning("cannot release the waiting consumers: %s", exc)

    def _register(self, consumer: WakingConsumer) -> None:
        with self._consumers_lock:
            self._consumers.add(consumer)


def push_token(pipe: redis.client.Pipeline, key: str) -> None:
    pipe.lpush(key, 1)
    pipe.ltrim(key, 0, WAKE_TOKENS - 1)
    pipe.pexpire(key, WAKE_TTL_MS)


class ReleaseOnShutdown(Middleware):
    """Releases the broker's blocked consumers when the worker begins to stop (else each would hold the worker's
    shutdown for up to its wait); a worker started again on the broker blocks again."""

    def before_worker_boot(self, broker: WakingRedisBroker, worker: Any) -> None:
        broker.stopping.clear()

    def before_worker_shutdown(self, broker: WakingRedisBroker, worker: Any) -> None:
        broker.release_waiting()


class ReadyOnBoot(Middleware):
    """A booted worker tells its supervisor it is ready (``READY=1``), then pings its watchdog while its consumers
    turn (each ``__next__`` beats): the `dramatiq` command's worker processes as well as one run in-process."""

    def after_worker_boot(self, broker: WakingRedisBroker, worker: Any) -> None:
        watchdog.ready()


class WakingConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, blocking on the queue's wake list where Dramatiq's would sleep.

    Returns None after each wait, as Dramatiq's does after each sleep: its consumer thread then moves the delayed
    messages that are due, and notices a stop or pause."""

    broker: WakingRedisBroker

    def __init__(self, broker: WakingRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.own_key = f"{broker.wake_key(queue_name)}.{uuid.uuid4().hex}"
        self._keys = [broker.wake_key(queue_name), self.own_key]
        self._waiter: redis.Redis | None = None  # a connection of its own, held while it blocks
        self._freed = threading.Event()  # a task of this consumer was acknowledged (by a worker thread)
        self._etas: dict[str, int] = {}  # message id -> eta, of the delayed messages handed out and not acked
        self._lock = threading.Lock()  # _etas: acks come from the worker threads
        self._maintain = False  # the last wait timed out: the next fetch runs the queue's maintenance
        broker._register(self)

    def __next__(self) -> Any:
        watchdog.beat(f"consumer {self.queue_name}")  # every fetch or wait, at most wait_s apart
        try:
            if self.message_cache:
                return self._take(self.message_cache.pop(0))
            free = self.prefetch - self.outstanding_message_count
            if free <= 0:
                self._freed.wait(self._timeout())
                self._freed.clear()
                return None
            self.message_cache = self.broker.fetch(self.queue_name, free, maintenance=self._maintain)
            self._maintain = False
            if self.message_cache:
                if len(self.message_cache) >= free:  # more may be waiting: a peer looks too
                    self.broker.wake(self.queue_name)
                return self._take(self.message_cache.pop(0))
            self._maintain = not self._wait()
            return None
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None
        except redis.exceptions.OutOfMemoryError as exc:  # one line, as for Redis away, not a traceback a second
            raise ConnectionClosed(f"the agent's Redis is full (maxmemory): {exc}") from None

    def _take(self, data: bytes | None) -> Any:
        if data is None:  # its data vanished between the pop and the read (Dramatiq #266): skip it, as Dramatiq does
            log.warning("a message of queue %r had no data; skipped", self.queue_name)
            return None
        message = MessageProxy(Message.decode(data))
        self.queued_message_ids.add(message.message_id)
        eta = message.options.get("eta")
        if isinstance(eta, (int, float)):
            with self._lock:
                self._etas[message.message_id] = int(eta)
        return message

    def _timeout(self) -> float:
        """How long to wait: ``wait_s``, or less when a delayed message held here is due sooner."""
        with self._lock:
            if not self._etas:
                return self.broker.wait_s
            due_in = (min(self._etas.values()) - current_millis()) / 1000
        return max(0.0, min(self.broker.wait_s, due_in))

    def _wait(self) -> bool:
        """Block until a wake token arrives or the timeout passes; whether a token came."""
        if self.broker.stopping.is_set():
            time.sleep(STOPPING_POLL_S)
            return True
        timeout = self._timeout()
        if timeout < 0.001:  # BLPOP's 0 would block for ever
            return True
        if self._waiter is None:
            self._waiter = redis.Redis(connection_pool=self.broker.client.connection_pool, single_connection_client=True)
        return self._waiter.blpop(self._keys, timeout) is not None

    def ack(self, message: Any) -> None:
        try:
            super().ack(message)
        finally:
            self._done(message)

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)
        finally:
            self._done(message)

    def _done(self, message: Any) -> None:
        with self._lock:
            self._etas.pop(message.message_id, None)
        self._freed.set()

    def requeue(self, messages: Any) -> None:
        messages = list(messages)
        super().requeue(messages)
        with self._lock:
            for message in messages:
                self._etas.pop(message.message_id, None)
        if messages:
            self.broker.wake(self.queue_name)

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.close()  # back to the pool
            self._waiter = None
