"""pods.reconcile: lock, read the DESIRED state, validate, sync, store the status and queue it for the cloud,
confirm a deletion, schedule the next sync, remove orphans."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import dramatiq
import pytest
import redis

from edgeworkers import constants
from edgeworkers.k8s.pod import Pod
from edgeworkers.metamanager.outbox import POD_DELETED, POD_STATUS, Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.lock import PodBusy, pod_lock
from edgeworkers.pods.reconcile import InvalidPod, PodWorkers, reconcile, remove_orphans, schedule_sync
from edgeworkers.pods.sync import SyncResult
from edgeworkers.status.manager import StatusManager


@dataclass
class FakeSyncer:
    result: SyncResult = field(default_factory=lambda: SyncResult({"phase": "Running"}, None))
    calls: list[tuple[str, Pod | None]] = field(default_factory=list)

    def sync(self, key: str, pod: Pod | None, previous_status: dict | None = None, pulled=None) -> SyncResult:
        self.calls.append((key, pod))
        return self.result

    def prefetch_images(self, key: str, pod: Pod, previous_status: dict | None = None) -> dict:
        return {}


@dataclass
class RecordingBroker:
    messages: list[tuple[dramatiq.Message, int | None]] = field(default_factory=list)

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        self.messages.append((message, delay))
        return message


def pod(name: str = "web", image: str = "busybox", rv: str = "1", source: str | None = None) -> dict:
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": rv}
    if source:
        meta["annotations"] = {constants.ANNOTATION_SOURCE: source}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "app", "image": image}]}}


def make_workers(client, syncer, settings, broker=None, *, listed: bool = True) -> PodWorkers:
    """Pod workers on ``client``; ``listed``: the bridge has filled MetaManager (its epoch stands)."""
    store = MetaStore(client)
    workers = PodWorkers(client, store, StatusManager(store, Outbox(client)), syncer, broker, settings)
    if listed:
        workers.epoch.establish()
    return workers


@pytest.fixture
def workers(fake_redis, settings) -> PodWorkers:
    return make_workers(fake_redis, FakeSyncer(), settings, RecordingBroker())


def outbox_ops(workers: PodWorkers) -> list[tuple[str, str, bool]]:
    return [(i.payload["op"], i.payload["name"], i.payload["mirror"]) for i in Outbox(workers.redis).peek()]

def test_a_task_decodes_its_pod_once_and_again_only_when_it_changed_before_the_lock(workers, monkeypatch):
    from edgeworkers.pods import reconcile as module

    decoded = []
    monkeypatch.setattr(module, "decode_pod", lambda raw: decoded.append(raw["metadata"]["resourceVersion"]) or
                        Pod.model_validate(raw))
    workers.store.put(POD, pod(rv="2"))
    reconcile(workers, "default/web")
    assert decoded == ["2"]  # before the lock, for the image prefetch; the sync under it reuses that decode

    class Reapply(FakeSyncer):
        def prefetch_images(self, key, pod_, previous_status=None):
            workers.store.put(POD, pod(image="busybox:1.36", rv="3"))  # a new version lands before the lock
            return {}

    decoded.clear()
    reconcile(make_workers(workers.redis, Reapply(), workers.settings), "default/web")
    assert decoded == ["2", "3"]


def test_reconcile_syncs_the_stored_desired_pod_and_stores_its_status(workers):
    workers.store.put(POD, pod(image="busybox:1.36", rv="2"))
    assert reconcile(workers, "default/web") is None
    [(key, synced)] = workers.syncer.calls
    assert key == "default/web"
    assert synced.spec.containers[0].image == "busybox:1.36"
    assert workers.status.get("default/web") == {"phase": "Running"}


def test_reconcile_of_a_pod_no_longer_desired_syncs_none_and_forgets_its_status(workers):
    workers.status.set("default/web", None, {"phase": "Running"})
    workers.syncer.result = SyncResult(None, None, gone=True)
    reconcile(workers, "default/web")
    assert workers.syncer.calls == [("default/web", None)]
    assert workers.status.get("default/web") is None


def test_a_pod_absent_from_a_metamanager_without_epoch_is_left_alone(fake_redis, settings):
    lost = make_workers(fake_redis, FakeSyncer(), settings, RecordingBroker(), listed=False)  # its Redis lost its data
    assert reconcile(lost, "default/web") is None
    assert lost.syncer.calls == []


def test_a_deleted_pod_leaves_the_desired_state_once_its_containers_are_gone(workers):
    deleted = pod(rv="3")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    workers.store.put(POD, deleted)
    workers.syncer.result = SyncResult(None, None, gone=True)
    reconcile(workers, "default/web")
    [(_, synced)] = workers.syncer.calls
    assert synced.metadata.deletion_timestamp
    assert workers.store.get(POD, "default", "web") is None


def test_an_invalid_pod_being_deleted_is_still_killed_and_forgotten(workers):
    bad = pod(rv="4")
    bad["spec"]["containers"][0]["name"] = "Web_1"
    bad["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    workers.store.put(POD, bad)
    workers.syncer.result = SyncResult(None, None, gone=True)
    reconcile(workers, "default/web")
    assert workers.syncer.calls == [("default/web", None)]
    assert workers.store.get(POD, "default", "web") is None


def test_a_pod_applied_anew_while_being_deleted_is_kept(workers):
    deleted = pod(rv="3")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    store = workers.store
    store.put(POD, deleted)

    class ReapplyDuringSync(FakeSyncer):
        def sync(self, key, synced, previous_status=None, pulled=None):
            store.put(POD, pod(rv="4"))  # `pod apply` while the containers are being stopped
            return SyncResult(None, None, gone=True)

    reconcile(make_workers(workers.redis, ReapplyDuringSync(), workers.settings), "default/web")
    assert store.get(POD, "default", "web")["metadata"]["resourceVersion"] == "4"


def test_reconcile_returns_the_syncers_follow_up_delay(workers):
    workers.store.put(POD, pod())
    workers.syncer.result = SyncResult({"phase": "Pending"}, 10.0)
    assert reconcile(workers, "default/web") == 10.0


def test_an_invalid_desired_pod_is_refused_with_its_reason_and_never_synced(workers, caplog):
    bad = pod()
    bad["spec"]["containers"][0]["name"] = "Web_1"
    workers.store.put(POD, bad)
    with pytest.raises(InvalidPod, match="Web_1"):
        reconcile(workers, "default/web")
    assert workers.syncer.calls == []
    status = workers.status.get("default/web")
    assert status["phase"] == "Failed" and status["reason"] == "Invalid"
    assert 'spec.containers[0].name: Invalid value: "Web_1"' in status["message"]
    assert "default/web" in caplog.text and "Web_1" in caplog.text


def test_a_desired_pod_that_does_not_decode_is_refused_with_its_reason_and_never_synced(workers, caplog):
    bad = pod()
    bad["spec"]["containers"][0]["command"] = ["sleep", 5]  # validation passes; only decoding catches it
    workers.store.put(POD, bad)
    with pytest.raises(InvalidPod, match="spec.containers.command"):
        reconcile(workers, "default/web")
    assert workers.syncer.calls == []
    status = workers.status.get("default/web")
    assert status["phase"] == "Failed" and status["reason"] == "Invalid"
    assert status["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: '
        "json: cannot unmarshal number into Go struct field Container.spec.containers.command of type string"
    )
    assert "default/web" in caplog.text and "spec.containers.command" in caplog.text


def test_a_pod_busy_in_another_worker_is_retried_later_not_synced(workers):
    workers.store.put(POD, pod())
    with pod_lock(workers.redis, "default/web"), pytest.raises(PodBusy):
        reconcile(workers, "default/web")
    assert workers.syncer.calls == []




def test_a_changed_status_is_queued_for_the_cloud_once(workers):
    workers.store.put(POD, pod(source=constants.SOURCE_API))
    reconcile(workers, "default/web")
    reconcile(workers, "default/web")  # the same status again: nothing more to send
    [item] = Outbox(workers.redis).peek()
    assert item.payload == {"op": POD_STATUS, "namespace": "default", "name": "web", "uid": "uid-web",
                            "status": {"phase": "Running"}, "mirror": False}
    workers.syncer.result = SyncResult({"phase": "Failed"}, None)
    reconcile(workers, "default/web")
    [item] = Outbox(workers.redis).peek()  # the newer status replaced the pending one
    assert item.payload["status"] == {"phase": "Failed"}


def test_a_static_pods_status_goes_to_its_mirror_pod(workers):
    workers.store.put(POD, pod("web-node1", source=constants.SOURCE_FILE))
    reconcile(workers, "default/web-node1")
    assert outbox_ops(workers) == [(POD_STATUS, "web-node1", True)]


def test_a_deleted_pods_end_is_confirmed_to_the_cloud_after_its_containers_are_gone(workers):
    deleted = pod(rv="3", source=constants.SOURCE_API)
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    workers.store.put(POD, deleted)
    workers.syncer.result = SyncResult({"phase": "Running"}, 1.0)  # containers still stopping
    reconcile(workers, "default/web")
    assert [op for op, _, _ in outbox_ops(workers)] == [POD_STATUS]
    workers.syncer.result = SyncResult(None, None, gone=True)
    reconcile(workers, "default/web")
    [item] = Outbox(workers.redis).peek()
    assert item.payload == {"op": POD_DELETED, "namespace": "default", "name": "web", "uid": "uid-web", "mirror": False}
    assert workers.store.tombstone(POD, "default", "web") == 3


def test_a_pod_that_was_never_desired_confirms_nothing(workers):
    workers.syncer.result = SyncResult(None, None, gone=True)
    reconcile(workers, "default/web")
    assert outbox_ops(workers) == []


def test_an_invalid_pods_failure_is_queued_for_the_cloud(workers):
    bad = pod(source=constants.SOURCE_API)
    bad["spec"]["containers"][0]["name"] = "Web_1"
    workers.store.put(POD, bad)
    with pytest.raises(InvalidPod):
        reconcile(workers, "default/web")
    [item] = Outbox(workers.redis).peek()
    assert item.payload["status"]["phase"] == "Failed" and item.payload["status"]["reason"] == "Invalid"


def test_schedule_sync_keeps_a_single_chain_per_pod(workers):
    assert schedule_sync(workers, "default/web", {}, 10.0)
    assert not schedule_sync(workers, "default/web", {}, 10.0)  # one is already due as soon
    assert not schedule_sync(workers, "default/web", {}, 60.0)
    assert schedule_sync(workers, "default/web", {}, 1.0)  # sooner than the pending one
    assert schedule_sync(workers, "default/other", {}, 10.0)
    sent = workers.broker.messages
    assert [delay for _, delay in sent] == [10_000, 1_000, 10_000]
    assert {(m.actor_name, m.queue_name) for m, _ in sent} == {("sync_pod", constants.QUEUE_POD_SYNC)}
    assert sent[0][0].args == ("default/web", {})


class RacySyncer:
    """A PodSyncer on FakeRuntime whose orphan list was read before a pod was (re)added."""

    def __init__(self, syncer, stale: list[str]) -> None:
        self.syncer, self.stale = syncer, stale

    def orphans(self, desired_keys: set[str]) -> list[str]:
        return self.stale

    def kill_pod(self, key: str, grace_period_s: float) -> bool:
        return self.syncer.kill_pod(key, grace_period_s)


def orphan_agent(fake_redis, settings, stale: list[str], listed: bool = True):
    from edgeworkers.pods.backoff import MemoryBackoffStore
    from edgeworkers.pods.sync import PodSyncer
    from edgeworkers.runtime.fake import FakeRuntime
    from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig

    runtime = FakeRuntime(node_name=settings.node_name)
    for name in ("orphan", "web"):
        ref = PodRef(f"uid-{name}", "default", name)
        runtime.create_container(runtime.create_sandbox(SandboxConfig(ref)), ref, ContainerConfig("app", "busybox"))
    syncer = RacySyncer(PodSyncer(runtime, MemoryBackoffStore(), settings), stale)
    return make_workers(fake_redis, syncer, settings, listed=listed), runtime


def test_a_follow_up_whose_enqueue_fails_leaves_no_pending_marker_so_the_retry_schedules_it(
    fake_redis, settings
):
    class DownBroker(RecordingBroker):
        def enqueue(self, message, *, delay=None):
            raise redis.ConnectionError("redis away")

    down = make_workers(fake_redis, FakeSyncer(), settings, DownBroker())
    with pytest.raises(redis.ConnectionError):
        schedule_sync(down, "default/web", {}, 10.0)
    up = make_workers(fake_redis, FakeSyncer(), settings, RecordingBroker())
    assert schedule_sync(up, "default/web", {}, 10.0)  # not "already pending": the task's retry enqueues it
    assert len(up.broker.messages) == 1


def test_orphans_are_removed_but_a_pod_desired_again_is_kept(fake_redis, settings):
    current, runtime = orphan_agent(fake_redis, settings, stale=["default/orphan", "default/web"])
    current.store.put(POD, pod("web"))  # added after the orphan list was read
    assert remove_orphans(current) == ["default/orphan"]
    assert {c.pod.key for c in runtime.list_containers()} == {"default/web"}


def test_orphan_cleanup_waits_for_the_bridges_list_after_a_redis_data_loss(fake_redis, settings):
    current, runtime = orphan_agent(fake_redis, settings, stale=["default/orphan", "default/web"], listed=False)
    assert remove_orphans(current) == []
    assert {c.pod.key for c in runtime.list_containers()} == {"default/orphan", "default/web"}

    current.store.put(POD, pod("web"))
    current.epoch.establish()  # the bridge's list is complete
    assert remove_orphans(current) == ["default/orphan"]


def test_an_absence_read_across_a_data_loss_and_relist_kills_nothing(fake_redis, settings):
    current, runtime = orphan_agent(fake_redis, settings, stale=["default/web"])

    class LostMeanwhile(MetaStore):
        def get(self, kind, namespace, name):  # the Redis loses its data and the bridge lists again during the read
            fake_redis.flushdb()
            current.epoch.establish()
            return None

    racing = replace(current, store=LostMeanwhile(fake_redis))
    assert remove_orphans(racing) == []
    assert {c.pod.key for c in runtime.list_containers()} == {"default/orphan", "default/web"}


def test_an_orphan_being_synced_is_left_for_the_next_cleanup(fake_redis, settings):
    current, runtime = orphan_agent(fake_redis, settings, stale=["default/orphan"])
    with pod_lock(fake_redis, "default/orphan"):
        assert remove_orphans(current) == []
    assert "default/orphan" in {c.pod.key for c in runtime.list_containers()}


def test_a_deletion_is_confirmed_only_once_the_real_syncer_has_stopped_every_container(fake_redis, settings):
    from edgeworkers.pods.backoff import MemoryBackoffStore
    from edgeworkers.pods.sync import PodSyncer
    from edgeworkers.runtime.errors import ContainerRuntimeError
    from edgeworkers.runtime.fake import FakeRuntime
    from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig

    runtime = FakeRuntime(node_name=settings.node_name)
    workers = make_workers(fake_redis, PodSyncer(runtime, MemoryBackoffStore(), settings), settings)
    ref = PodRef("uid-web", "default", "web")
    sandbox = runtime.create_sandbox(SandboxConfig(ref))
    runtime.start_container(runtime.create_container(sandbox, ref, ContainerConfig("app", "busybox")))
    deleted = pod(rv="3")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    deleted["spec"]["terminationGracePeriodSeconds"] = 0
    workers.store.put(POD, deleted)
    runtime.fail("stop_container", ContainerRuntimeError("cannot kill container: permission denied"))

    assert reconcile(workers, "default/web") == settings.backoff_initial_s  # looked at again
    assert workers.store.get(POD, "default", "web") is not None and outbox_ops(workers) == []
    assert runtime.list_containers("default/web")

    assert reconcile(workers, "default/web") is None
    assert runtime.list_containers("default/web") == []
    assert workers.store.get(POD, "default", "web") is None
    assert outbox_ops(workers) == [(POD_DELETED, "web", False)]
