"""Per-pod lock: exclusive, bounded wait, renewed while held."""
from __future__ import annotations

import threading
import time

import dramatiq
import pytest
import redis

from edgeworkers.pods.lock import LeaseLost, PodBusy, ensure_held, lock_key, pod_lock
from tests.polling import wait_for


def test_a_second_holder_waits_boundedly_then_gets_a_retry(fake_redis):
    with pod_lock(fake_redis, "default/web"):
        started = time.monotonic()
        with pytest.raises(PodBusy) as caught, pod_lock(fake_redis, "default/web", wait_s=0.3, retry_delay_ms=250):
            pass
        assert 0.15 <= time.monotonic() - started < 2  # redis-py polls every 0.1 s
    assert isinstance(caught.value, dramatiq.Retry)
    assert caught.value.delay == 250


def test_other_pods_are_not_blocked(fake_redis):
    with pod_lock(fake_redis, "default/a"), pod_lock(fake_redis, "default/b", wait_s=0.1):
        assert fake_redis.exists(lock_key("default/a"), lock_key("default/b")) == 2


def test_the_lock_is_released_after_the_block_even_on_error(fake_redis):
    with pytest.raises(RuntimeError), pod_lock(fake_redis, "default/web"):
        raise RuntimeError("sync failed")
    assert not fake_redis.exists(lock_key("default/web"))
    with pod_lock(fake_redis, "default/web", wait_s=0.1):
        pass


def test_the_lease_is_renewed_while_the_sync_runs(fake_redis):
    with pod_lock(fake_redis, "default/slow", lease_s=0.6):
        deadline = time.monotonic() + 1.5  # well past the lease: held only if renewed
        while time.monotonic() < deadline:
            assert fake_redis.exists(lock_key("default/slow"))
            time.sleep(0.05)


def test_an_abandoned_lease_expires(fake_redis):
    # A SIGKILLed holder: the lock was taken and never released nor renewed.
    fake_redis.lock(lock_key("default/web"), timeout=0.3).acquire()
    with pod_lock(fake_redis, "default/web", wait_s=2):
        assert fake_redis.exists(lock_key("default/web"))


def test_holders_never_overlap(fake_redis):
    inside, overlaps = [], []

    def work() -> None:
        for _ in range(5):
            while True:
                try:
                    with pod_lock(fake_redis, "default/web", wait_s=0.05):
                        inside.append(1)
                        if len(inside) > 1:
                            overlaps.append(True)
                        time.sleep(0.005)
                        inside.pop()
                    break
                except PodBusy:
                    continue

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_a_busy_pod_is_refused_at_once_without_parking_the_thread(fake_redis) -> None:
    with pod_lock(fake_redis, "default/web"):
        started = time.monotonic()
        with pytest.raises(PodBusy), pod_lock(fake_redis, "default/web"):
            pass
        assert time.monotonic() - started < 0.2


def test_a_lost_lease_stops_the_sync_at_its_next_step(fake_redis) -> None:
    with pod_lock(fake_redis, "default/web", lease_s=0.3) as lease:
        ensure_held()  # held: nothing happens
        fake_redis.delete(lock_key("default/web"))  # expired and gone, as after a long Redis stall
        wait_for(lease.lost.is_set, 2, "the renewer to notice")
        with pytest.raises(LeaseLost):
            ensure_held()
    ensure_held()  # outside any lock: nothing to check


def test_a_lease_not_renewed_for_a_whole_lease_is_lost(fake_redis, monkeypatch) -> None:
    with pod_lock(fake_redis, "default/web", lease_s=0.3) as lease:
        def stalled(*args, **kwargs):
            raise redis.TimeoutError("stalled")

        monkeypatch.setattr(redis.lock.Lock, "reacquire", stalled)
        wait_for(lease.lost.is_set, 2, "the lease given up")
