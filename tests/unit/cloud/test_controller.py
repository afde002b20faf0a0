import asyncio
import datetime as dt

import pytest

from edgeworkers.cloud import workloads
from edgeworkers.cloud.controller import BACKOFF_MAX_S, Controller, backoff_s
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "objects.db", lambda: T0)
    yield s
    s.close()


class Recorder(Controller):
    name = "recorder"
    resource = "configmaps"

    def __init__(self, store, hub, fail=0, again=None):
        super().__init__(store, hub, lambda: T0, resync_s=3600)
        self.synced: list = []
        self.fail, self.again = fail, again

    def sync(self, key):
        self.synced.append(key)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("boom")
        return self.again


def configmap(name):
    return {"metadata": {"name": name, "namespace": "default"}, "data": {}}


def test_the_back_off_doubles_from_5_ms_to_1000_s():
    assert [backoff_s(n) for n in (1, 2, 3)] == [0.005, 0.01, 0.02] and backoff_s(40) == BACKOFF_MAX_S


@pytest.mark.asyncio
async def test_events_of_its_kind_are_synced_once_each_in_order(store):
    hub = Hub(store)
    controller = Recorder(store, hub)
    task = asyncio.create_task(controller.run())
    for name in ("a", "b", "a"):
        hub.publish(store.create("configmaps", configmap(name)) if store.find("configmaps", "default", name) is None
                    else store.update("configmaps", {**store.get("configmaps", "default", name), "data": {"x": "1"}}))
    hub.publish(store.create("secrets", configmap("not-mine")))
    for _ in range(50):
        await asyncio.sleep(0.01)
        if len(controller.synced) >= 2:
            break
    task.cancel()
    assert controller.synced[:2] == [("default", "a"), ("default", "b")]
    assert ("default", "not-mine") not in controller.synced


@pytest.mark.asyncio
async def test_a_failed_sync_is_retried_with_back_off_and_a_deadline_looks_again(store):
    hub = Hub(store)
    failing = Recorder(store, hub, fail=2)
    failing.process(("default", "x"))
    failing.process(("default", "x"))
    assert failing._failures[("default", "x")] == 2
    task = asyncio.create_task(failing.run())
    for _ in range(100):
        await asyncio.sleep(0.01)
        if failing.synced.count(("default", "x")) >= 3:
            break
    assert failing.synced.count(("default", "x")) >= 3 and ("default", "x") not in failing._failures
    task.cancel()

    timed = Recorder(store, hub, again=0.02)
    task = asyncio.create_task(timed.run())
    timed.enqueue(("default", "y"))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if timed.synced.count(("default", "y")) >= 3:
            break
    task.cancel()
    assert timed.synced.count(("default", "y")) >= 3


def test_pods_from_a_template_carry_the_controller_reference(store):
    hub = Hub(store)
    owner = store.create("replicasets", {"metadata": {"name": "web", "namespace": "default"}, "spec": {}}).object
    template = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    pod = workloads.create_pod(store, hub, workloads.pod_from_template(
        "replicasets", owner, template, "web-", labels={"pod-template-hash": "h"}))
    assert pod["metadata"]["name"].startswith("web-") and pod["status"] == {"phase": "Pending"}
    assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": "h"}
    assert pod["spec"]["restartPolicy"] == "Always", "the API server's pod defaults"
    assert workloads.controlled_by(pod, owner) and workloads.controller_of(pod) == {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": owner["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}
    assert workloads.is_active(pod) and not workloads.is_ready(pod)


def test_availability_counts_from_the_ready_transition():
    pod = {"metadata": {}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    assert workloads.is_available(pod, 0, T0) and not workloads.is_available(pod, 10, T0 + dt.timedelta(seconds=5))
    assert workloads.is_available(pod, 10, T0 + dt.timedelta(seconds=10))
