"""The actors: thin callers of pods.reconcile that turn transient faults into limited retries."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis
from dramatiq.middleware import CurrentMessage

from edgeworkers import actors, constants, tasks
from edgeworkers.broker import TransientFault, retry_policy
from edgeworkers.metamanager.store import POD
from edgeworkers.pods.reconcile import InvalidPod
from edgeworkers.runtime.errors import RuntimeUnavailable
from tests.unit.pods.test_reconcile import FakeSyncer, make_agent, pod


@pytest.fixture
def agent(fake_redis, settings):
    return make_agent(fake_redis, FakeSyncer(), settings)


@pytest.mark.parametrize(
    "fault", [RuntimeUnavailable("Docker engine unavailable"), redis.ConnectionError("Connection refused")]
)
def test_a_transient_fault_is_logged_with_the_pod_and_becomes_a_limited_retry(agent, monkeypatch, caplog, fault):
    def sync(key, pod, previous_status=None, pulled=None):
        raise fault

    monkeypatch.setattr(agent.syncer, "sync", sync)
    monkeypatch.setattr(actors, "agent", lambda: agent)
    agent.store.put(POD, pod())
    with pytest.raises(TransientFault, match="pod default/web"):
        actors._run("default/web", {})
    assert f"pod default/web: {type(fault).__name__}: {fault}; retrying with back-off" in caplog.text
    assert retry_policy(max_retries=3)(2, TransientFault("x")) and not retry_policy(max_retries=3)(3, TransientFault("x"))


def test_the_last_retry_of_a_transient_fault_says_the_pod_is_given_up(agent, monkeypatch, caplog):
    def sync(key, pod, previous_status=None, pulled=None):
        raise RuntimeUnavailable("Docker engine unavailable")

    last = actors.settings().task_max_retries
    monkeypatch.setattr(agent.syncer, "sync", sync)
    monkeypatch.setattr(actors, "agent", lambda: agent)
    monkeypatch.setattr(CurrentMessage, "get_current_message", lambda: SimpleNamespace(options={"retries": last}))
    agent.store.put(POD, pod())
    with pytest.raises(TransientFault):
        actors._run("default/web", {})
    [record] = [r for r in caplog.records if r.name == "edgeworkers.actors"]
    assert record.levelname == "ERROR"
    assert record.getMessage().endswith(f"giving up after {last} retries") and "pod default/web" in record.getMessage()


def test_invalid_pods_are_not_retried_by_the_actors():
    for actor in (actors.add_pod, actors.update_pod, actors.delete_pod, actors.sync_pod):
        assert actor.options["throws"] == (InvalidPod,)


def test_actors_listen_on_their_own_queues():
    assert actors.add_pod.queue_name == constants.QUEUE_POD_ADD
    assert actors.update_pod.queue_name == constants.QUEUE_POD_UPDATE
    assert actors.delete_pod.queue_name == constants.QUEUE_POD_DELETE
    assert actors.sync_pod.queue_name == constants.QUEUE_POD_SYNC


def test_actors_carry_the_names_tasks_enqueue_by():
    for actor in (actors.add_pod, actors.update_pod, actors.delete_pod, actors.sync_pod):
        assert tasks.QUEUE_OF[actor.actor_name] == actor.queue_name
