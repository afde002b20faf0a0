"""The broker's retry policy: transient faults retried, permanent ones dead-lettered at once."""
from __future__ import annotations

from types import SimpleNamespace

import dramatiq
import pytest
import redis
from dramatiq.middleware import TimeLimitExceeded

from edgeworkers.broker import DurableRetries, TransientFault, make_broker, retry_policy
from edgeworkers.pods.lock import PodBusy
from edgeworkers.redisconn import redis_client
from edgeworkers.runtime.errors import ContainerCreateError, RuntimeUnavailable
from edgeworkers.wakeup import WakingRedisBroker


@pytest.mark.parametrize(
    ("retries", "exception", "retried"),
    [
        (0, RuntimeUnavailable("dockerd down"), True),
        (4, redis.ConnectionError("refused"), True),
        (5, RuntimeUnavailable("dockerd down"), False),  # max_retries reached
        (0, ValueError("a bug"), True),  # an unknown error: retried with back-off, not dead-lettered at once
        (4, redis.ResponseError("MISCONF Redis is configured to save RDB snapshots"), True),
        (4, redis.exceptions.OutOfMemoryError("OOM command not allowed"), True),  # the agent's Redis at its cap
        (5, ValueError("a bug"), False),
        (0, ContainerCreateError("bad"), True),
        (100, PodBusy("busy", delay=500), True),  # waiting for a pod is not a failure
        (4, TransientFault("pod default/web: dockerd down"), True),
        (5, TransientFault("pod default/web: dockerd down"), False),  # a Retry, yet limited as the fault it wraps
        (3, TimeLimitExceeded(), True),  # a slow pull on a poor link: retried, not dead-lettered
        (5, TimeLimitExceeded(), False),
    ],
)
def test_retry_policy(retries, exception, retried):
    assert retry_policy(max_retries=5)(retries, exception) is retried


def test_make_broker_uses_settings_and_becomes_the_global_broker(settings):
    config = settings.model_copy(update={"broker_heartbeat_timeout_ms": 5000, "redis_url": "redis://127.0.0.1:1/3"})
    previous = dramatiq.get_broker()
    broker = make_broker(config, redis_client(config), namespace="test-ns")
    assert dramatiq.get_broker() is broker
    dramatiq.set_broker(previous)
    assert isinstance(broker, WakingRedisBroker)  # its workers wake on enqueue
    assert broker.heartbeat_timeout == 5000
    assert broker.namespace == "test-ns"
    names = [type(m).__name__ for m in broker.middleware]
    assert {"DurableRetries", "TimeLimit", "AgeLimit", "Callbacks", "CurrentMessage", "ReleaseOnShutdown"} <= set(names)
    retries = next(m for m in broker.middleware if isinstance(m, DurableRetries))
    assert (retries.min_backoff, retries.max_backoff) == (config.task_min_backoff_ms, config.task_max_backoff_ms)


AWAY = redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
FULL = redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'.")


class FlakyBroker:
    """Enough of a broker for Retries: its Redis fails the first ``away`` enqueues with ``fault``."""

    def __init__(self, away: int, fault: Exception = AWAY) -> None:
        self.away, self.fault, self.enqueued = away, fault, []
        self.actor = SimpleNamespace(options={})

    def get_actor(self, name):
        return self.actor

    def enqueue(self, message, delay=None):
        if self.away:
            self.away -= 1
            raise self.fault
        self.enqueued.append((message, delay))


@pytest.mark.parametrize("fault", [AWAY, FULL], ids=["away", "full"])
def test_a_retry_is_re_enqueued_once_redis_is_back_not_lost_and_counted_once(fault, caplog):
    broker = FlakyBroker(away=3, fault=fault)
    message = dramatiq.Message(queue_name="pod_add", actor_name="add_pod", args=("default/web", {}), kwargs={}, options={})
    retries = DurableRetries(every_s=0.01, max_retries=5, retry_when=retry_policy(5))
    try:
        raise TransientFault("pod default/web: Redis away")
    except TransientFault as failed:
        retries.after_process_message(broker, message, exception=failed)
    [(requeued, delay)] = broker.enqueued
    assert requeued.options["retries"] == 1 and delay is not None
    assert caplog.text.count("cannot re-enqueue") == 3
    assert ("the agent's Redis is full (its maxmemory reached" in caplog.text) is (fault is FULL)


def test_the_queues_prometheus_exposition_is_only_ever_on_loopback(settings, monkeypatch):
    config = settings.model_copy(update={"queue_metrics_port": 19191})

    def has_prometheus(broker) -> bool:
        return any(type(m).__name__ == "Prometheus" for m in broker.middleware)

    monkeypatch.setenv("dramatiq_prom_host", "0.0.0.0")
    assert not has_prometheus(make_broker(config, redis_client(config)))  # a sender, or a worker not started by `edgeworkers worker`
    with pytest.raises(RuntimeError, match="127.0.0.1"):
        make_broker(config, redis_client(config), prometheus=True)
    monkeypatch.setenv("dramatiq_prom_host", "127.0.0.1")  # as `edgeworkers worker` sets it
    assert has_prometheus(make_broker(config, redis_client(config)))
    assert not has_prometheus(make_broker(settings, redis_client(settings)))  # off by default


def test_a_dead_letter_is_logged_with_its_pod_and_counted(caplog):
    import dramatiq
    import fakeredis

    from edgeworkers import constants
    from edgeworkers.broker import DeadLetters

    client = fakeredis.FakeRedis()
    message = dramatiq.Message(queue_name="pod_sync", actor_name="sync_pod", args=("default/web", {}), kwargs={},
                               options={"retries": 7})
    DeadLetters(client).after_nack(None, message)
    DeadLetters(client).after_nack(None, message)
    assert int(client.get(constants.KEY_DEAD_LETTERS)) == 2
    assert "pod default/web: task sync_pod dead-lettered after 7 retries" in caplog.text
