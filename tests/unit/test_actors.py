"""The actors: thin callers of pods.reconcile that turn transient faults into limited retries."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from edgeworkers import actors, constants, tasks
from edgeworkers.broker import TransientFault, retry_policy
from edgeworkers.metamanager.store import POD
from edgeworkers.pods.reconcile import InvalidPod
from edgeworkers.runtime.errors import RuntimeUnavailable
from tests.unit.pods.test_reconcile import FakeSyncer, make_workers, pod


@pytest.fixture
def workers(fake_redis, settings):
    return make_workers(fake_redis, FakeSyncer(), settings)


@pytest.mark.parametrize(
    "fault", [RuntimeUnavailable("Docker engine unavailable"), redis.ConnectionError("Connection refused")]
)
def test_a_transient_fault_is_logged_with_the_pod_and_becomes_a_limited_retry(workers, monkeypatch, caplog, fault):
    def sync(key, pod, previous_status=None, pulled=None):
        raise fault

    monkeypatch.setattr(workers.syncer, "sync", sync)
    workers.store.put(POD, pod())
    with pytest.raises(TransientFault, match="pod default/web"):
        actors.run(workers, "default/web", {})
    assert f"pod default/web: {type(fault).__name__}: {fault}; retrying with back-off" in caplog.text
    assert retry_policy(max_retries=3)(2, TransientFault("x")) and not retry_policy(max_retries=3)(3, TransientFault("x"))


def test_the_last_retry_of_a_transient_fault_says_the_pod_is_given_up(workers, monkeypatch, caplog):
    def sync(key, pod, previous_status=None, pulled=None):
        raise RuntimeUnavailable("Docker engine unavailable")

    last = workers.settings.task_max_retries
    monkeypatch.setattr(workers.syncer, "sync", sync)
    monkeypatch.setattr(CurrentMessage, "get_current_message", lambda: SimpleNamespace(options={"retries": last}))
    workers.store.put(POD, pod())
    with pytest.raises(TransientFault):
        actors.run(workers, "default/web", {})
    [record] = [r for r in caplog.records if r.name == "edgeworkers.actors"]
    assert record.levelname == "ERROR"
    assert record.getMessage().endswith(f"giving up after {last} retries") and "pod default/web" in record.getMessage()


@pytest.fixture
def declared(workers):
    return actors.declare(StubBroker(), workers)


def test_invalid_pods_are_not_retried_by_the_actors(declared):
    for actor in declared.values():
        assert actor.options["throws"] == (InvalidPod,)


def test_actors_listen_on_their_own_queues_under_the_names_tasks_enqueue_by(declared):
    assert {name: actor.queue_name for name, actor in declared.items()} == {
        tasks.ADD_POD: constants.QUEUE_POD_ADD, tasks.UPDATE_POD: constants.QUEUE_POD_UPDATE,
        tasks.DELETE_POD: constants.QUEUE_POD_DELETE, tasks.SYNC_POD: constants.QUEUE_POD_SYNC,
    }
    assert all(actor.actor_name == name for name, actor in declared.items())


def test_only_the_scheduled_sync_may_schedule_the_next_one(declared, monkeypatch):
    calls = []
    monkeypatch.setattr(actors, "run_task", lambda workers, key, message, follow_up: calls.append((key, follow_up)))
    for name in (tasks.ADD_POD, tasks.SYNC_POD):
        declared[name].fn("default/web", {})
    assert calls == [("default/web", False), ("default/web", True)]
