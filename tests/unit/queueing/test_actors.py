"""The actors' core: lock, read the DESIRED state, validate, sync, store the status, schedule the next sync."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import dramatiq
import pytest
import redis
from dramatiq.middleware import CurrentMessage

from edgeworkers import actors, constants
from edgeworkers.actors import Agent, InvalidPod, reconcile, schedule_sync, sender
from edgeworkers.broker import TransientFault, retry_policy
from edgeworkers.k8s.pod import Pod
from edgeworkers.messages import Message
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.lock import PodBusy, pod_lock
from edgeworkers.pods.sync import SyncResult
from edgeworkers.runtime.errors import RuntimeUnavailable


@dataclass
class FakeSyncer:
    result: SyncResult = field(default_factory=lambda: SyncResult({"phase": "Running"}, None))
    calls: list[tuple[str, Pod | None]] = field(default_factory=list)

    def sync(self, key: str, pod: Pod | None, previous_status: dict | None = None) -> SyncResult:
        self.calls.append((key, pod))
        return self.result


def pod(name: str = "web", image: str = "busybox", rv: str = "1") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": rv},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


@pytest.fixture
def agent(fake_redis) -> Agent:
    return Agent(fake_redis, MetaStore(fake_redis), FakeSyncer())


def test_reconcile_syncs_the_stored_desired_pod_and_stores_its_status(agent):
    agent.store.put(POD, pod(image="busybox:1.36", rv="2"))
    assert reconcile(agent, "default/web") is None
    [(key, synced)] = agent.syncer.calls
    assert key == "default/web"
    assert synced.spec.containers[0].image == "busybox:1.36"
    assert agent.store.get_pod_status("default/web") == {"phase": "Running"}


def test_reconcile_of_a_pod_no_longer_desired_syncs_none_and_forgets_its_status(agent):
    agent.store.put_pod_status("default/web", {"phase": "Running"})
    agent.syncer.result = SyncResult(None, None)
    reconcile(agent, "default/web")
    assert agent.syncer.calls == [("default/web", None)]
    assert agent.store.get_pod_status("default/web") is None


def test_a_deleted_pod_leaves_the_desired_state_once_its_containers_are_gone(agent):
    deleted = pod(rv="3")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    agent.store.put(POD, deleted)
    agent.syncer.result = SyncResult(None, None)
    reconcile(agent, "default/web")
    [(_, synced)] = agent.syncer.calls
    assert synced.metadata.deletion_timestamp
    assert agent.store.get(POD, "default", "web") is None


def test_an_invalid_pod_being_deleted_is_still_killed_and_forgotten(agent):
    bad = pod(rv="4")
    bad["spec"]["containers"][0]["name"] = "Web_1"
    bad["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    agent.store.put(POD, bad)
    agent.syncer.result = SyncResult(None, None)
    reconcile(agent, "default/web")
    assert agent.syncer.calls == [("default/web", None)]
    assert agent.store.get(POD, "default", "web") is None


def test_a_pod_applied_anew_while_being_deleted_is_kept(agent):
    deleted = pod(rv="3")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    store = agent.store
    store.put(POD, deleted)

    class ReapplyDuringSync(FakeSyncer):
        def sync(self, key, synced, previous_status=None):
            store.put(POD, pod(rv="4"))  # `pod apply` while the containers are being stopped
            return SyncResult(None, None)

    reconcile(Agent(agent.redis, store, ReapplyDuringSync()), "default/web")
    assert store.get(POD, "default", "web")["metadata"]["resourceVersion"] == "4"


def test_reconcile_returns_the_syncers_follow_up_delay(agent):
    agent.store.put(POD, pod())
    agent.syncer.result = SyncResult({"phase": "Pending"}, 10.0)
    assert reconcile(agent, "default/web") == 10.0


def test_an_invalid_desired_pod_is_refused_with_its_reason_and_never_synced(agent, caplog):
    bad = pod()
    bad["spec"]["containers"][0]["name"] = "Web_1"
    agent.store.put(POD, bad)
    with pytest.raises(InvalidPod, match="Web_1"):
        reconcile(agent, "default/web")
    assert agent.syncer.calls == []
    status = agent.store.get_pod_status("default/web")
    assert status["phase"] == "Failed" and status["reason"] == "Invalid"
    assert 'spec.containers[0].name: Invalid value: "Web_1"' in status["message"]
    assert "default/web" in caplog.text and "Web_1" in caplog.text


def test_a_desired_pod_that_does_not_decode_is_refused_with_its_reason_and_never_synced(agent, caplog):
    bad = pod()
    bad["spec"]["containers"][0]["command"] = ["sleep", 5]  # validation passes; only decoding catches it
    agent.store.put(POD, bad)
    with pytest.raises(InvalidPod, match="spec.containers.command"):
        reconcile(agent, "default/web")
    assert agent.syncer.calls == []
    status = agent.store.get_pod_status("default/web")
    assert status["phase"] == "Failed" and status["reason"] == "Invalid"
    assert status["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: '
        "json: cannot unmarshal number into Go struct field Container.spec.containers.command of type string"
    )
    assert "default/web" in caplog.text and "spec.containers.command" in caplog.text


def test_a_pod_busy_in_another_worker_is_retried_later_not_synced(agent):
    agent.store.put(POD, pod())
    with pod_lock(agent.redis, "default/web"), pytest.raises(PodBusy):
        reconcile(agent, "default/web")
    assert agent.syncer.calls == []


@pytest.mark.parametrize(
    "fault", [RuntimeUnavailable("Docker engine unavailable"), redis.ConnectionError("Connection refused")]
)
def test_a_transient_fault_is_logged_with_the_pod_and_becomes_a_limited_retry(agent, monkeypatch, caplog, fault):
    def sync(key, pod, previous_status=None):
        raise fault

    monkeypatch.setattr(agent.syncer, "sync", sync)
    monkeypatch.setattr(actors, "agent", lambda: agent)
    agent.store.put(POD, pod())
    with pytest.raises(TransientFault, match="pod default/web"):
        actors._run("default/web", {})
    assert f"pod default/web: {type(fault).__name__}: {fault}; retrying with back-off" in caplog.text
    assert retry_policy(max_retries=3)(2, TransientFault("x")) and not retry_policy(max_retries=3)(3, TransientFault("x"))


def test_the_last_retry_of_a_transient_fault_says_the_pod_is_given_up(agent, monkeypatch, caplog):
    def sync(key, pod, previous_status=None):
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


def test_schedule_sync_keeps_a_single_chain_per_pod(fake_redis, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(actors.sync_pod, "send_with_options", lambda args, delay: sent.append(delay))
    assert schedule_sync(fake_redis, "default/web", {}, 10.0)
    assert not schedule_sync(fake_redis, "default/web", {}, 10.0)  # one is already due as soon
    assert not schedule_sync(fake_redis, "default/web", {}, 60.0)
    assert schedule_sync(fake_redis, "default/web", {}, 1.0)  # sooner than the pending one
    assert schedule_sync(fake_redis, "default/other", {}, 10.0)
    assert sent == [10_000, 1_000, 10_000]


@dataclass
class RecordingBroker:
    messages: list[dramatiq.Message] = field(default_factory=list)

    def enqueue(self, message: dramatiq.Message) -> dramatiq.Message:
        self.messages.append(message)
        return message


@pytest.mark.parametrize(
    ("operation", "actor", "queue"),
    [("insert", "add_pod", "pod_add"), ("update", "update_pod", "pod_update"), ("delete", "delete_pod", "pod_delete")],
)
def test_sender_routes_each_operation_to_its_queue_with_key_and_message(operation, actor, queue):
    broker = RecordingBroker()
    message = Message.for_object(POD, pod(), operation, source="file")
    sender(broker)(message)
    [task] = broker.messages
    assert (task.queue_name, task.actor_name) == (queue, actor)
    assert task.args == ("default/web", message.to_dict())


class RacySyncer:
    """A PodSyncer on FakeRuntime whose orphan list was read before a pod was (re)added."""

    def __init__(self, syncer, stale: list[str]) -> None:
        self.syncer, self.stale = syncer, stale

    def orphans(self, desired_keys: set[str]) -> list[str]:
        return self.stale

    def kill_pod(self, key: str, grace_period_s: float) -> bool:
        return self.syncer.kill_pod(key, grace_period_s)


def orphan_agent(fake_redis, settings, stale: list[str]):
    from edgeworkers.pods.backoff import MemoryBackoffStore
    from edgeworkers.pods.sync import PodSyncer
    from edgeworkers.runtime.fake import FakeRuntime
    from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig

    runtime = FakeRuntime(node_name=settings.node_name)
    for name in ("orphan", "web"):
        ref = PodRef(f"uid-{name}", "default", name)
        runtime.create_container(runtime.create_sandbox(SandboxConfig(ref)), ref, ContainerConfig("app", "busybox"))
    syncer = RacySyncer(PodSyncer(runtime, MemoryBackoffStore(), settings), stale)
    return Agent(fake_redis, MetaStore(fake_redis), syncer), runtime


def test_orphans_are_removed_but_a_pod_desired_again_is_kept(fake_redis, settings):
    current, runtime = orphan_agent(fake_redis, settings, stale=["default/orphan", "default/web"])
    current.store.put(POD, pod("web"))  # added after the orphan list was read
    assert actors.remove_orphans(current) == ["default/orphan"]
    assert {c.pod.key for c in runtime.list_containers()} == {"default/web"}


def test_an_orphan_being_synced_is_left_for_the_next_cleanup(fake_redis, settings):
    current, runtime = orphan_agent(fake_redis, settings, stale=["default/orphan"])
    with pod_lock(fake_redis, "default/orphan"):
        assert actors.remove_orphans(current) == []
    assert "default/orphan" in {c.pod.key for c in runtime.list_containers()}
