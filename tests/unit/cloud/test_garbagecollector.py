"""The garbage collector's foreground deletion: a Deployment waits for its ReplicaSet, which waits for its pods; a pod
on a node goes once its node confirms; a restart resumes what was waiting."""
import asyncio
import datetime as dt

import pytest

from edgeworkers.cloud import ownership
from edgeworkers.cloud.garbagecollector import GarbageCollector
from edgeworkers.cloud.ownership import FOREGROUND
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
DEPLOYMENT, REPLICA_SET = ("deployments", "default/web"), ("replicasets", "default/web-abc")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "objects.db", clock=lambda: T0)
    yield s
    s.close()


def ref(owner, block=True):
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, **({"blockOwnerDeletion": True} if block else {})}


def create(store, resource, name, *owners, block=True, **spec):
    meta = {"name": name, "namespace": "default", "ownerReferences": [ref(o, block) for o in owners]}
    return store.create(resource, {"metadata": meta, "spec": spec}).object


def workload(store):
    """A Deployment, its ReplicaSet, and its two pods: one on a node, one bound to none."""
    deployment = create(store, "deployments", "web")
    replica_set = create(store, "replicasets", "web-abc", deployment)
    create(store, "pods", "placed", replica_set, containers=[{"name": "c"}], nodeName="edge-1")
    create(store, "pods", "loose", replica_set, containers=[{"name": "c"}])
    return deployment


async def until(condition, what, timeout_s=5.0):
    """Let the collector's loop run until ``condition`` holds; fail after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


def names(store, resource):
    return [o["metadata"]["name"] for o in store.list(resource)]


def delete(store, hub, resource, obj, grace=None, policy=None):
    for event in ownership.delete(store, resource, obj, grace, policy)[1]:
        hub.publish(event)


def test_a_deployment_waits_for_its_replica_set_which_waits_for_its_pods(store):
    hub = Hub(store)
    gc = GarbageCollector(store, hub, lambda: T0)
    deployment = workload(store)
    delete(store, hub, "deployments", deployment, policy="Foreground")
    marked = store.get("deployments", "default", "web")
    assert marked["metadata"]["finalizers"] == [FOREGROUND] and marked["metadata"]["generation"] == 2

    gc.sync(DEPLOYMENT)  # the ReplicaSet has dependents of its own: deleted in the foreground too
    replica_set = store.get("replicasets", "default", "web-abc")
    assert replica_set["metadata"]["finalizers"] == [FOREGROUND] and replica_set["metadata"]["deletionTimestamp"]
    gc.sync(REPLICA_SET)  # the loose pod goes at once, the placed one gracefully: both block their owner
    assert names(store, "pods") == ["placed"]
    assert store.get("pods", "default", "placed")["metadata"]["deletionGracePeriodSeconds"] == 30
    gc.sync(REPLICA_SET)
    gc.sync(DEPLOYMENT)
    assert names(store, "replicasets") == ["web-abc"] and names(store, "deployments") == ["web"]

    placed = store.get("pods", "default", "placed")
    confirmed = ownership.delete(store, "pods", placed, 0, None)[1]  # the node confirms
    assert {key for event in confirmed for key in gc.keys_for(event)} == {REPLICA_SET}
    gc.sync(REPLICA_SET)
    assert names(store, "replicasets") == []
    gc.sync(DEPLOYMENT)
    assert names(store, "deployments") == []


def test_dependents_that_do_not_block_are_deleted_but_not_waited_for(store):
    hub = Hub(store)
    gc = GarbageCollector(store, hub, lambda: T0)
    replica_set = create(store, "replicasets", "web-abc")
    create(store, "pods", "placed", replica_set, block=False, containers=[{"name": "c"}], nodeName="edge-1")
    delete(store, hub, "replicasets", replica_set, policy="Foreground")
    gc.sync(REPLICA_SET)
    assert names(store, "replicasets") == []
    assert store.get("pods", "default", "placed")["metadata"]["deletionTimestamp"]


def test_a_dependent_with_another_owner_is_released_and_the_owner_goes(store):
    hub = Hub(store)
    gc = GarbageCollector(store, hub, lambda: T0)
    replica_set, other = create(store, "replicasets", "web-abc"), create(store, "replicasets", "other")
    create(store, "pods", "shared", replica_set, other, containers=[{"name": "c"}])
    delete(store, hub, "replicasets", replica_set, policy="Foreground")
    gc.sync(REPLICA_SET)
    assert names(store, "replicasets") == ["other"]
    assert [r["name"] for r in store.get("pods", "default", "shared")["metadata"]["ownerReferences"]] == ["other"]


def test_an_owner_with_a_finalizer_of_its_own_keeps_it_once_its_dependents_are_gone(store):
    hub = Hub(store)
    gc = GarbageCollector(store, hub, lambda: T0)
    replica_set = store.create("replicasets", {"metadata": {"name": "web-abc", "namespace": "default",
                                                            "finalizers": ["example.com/hold"]}, "spec": {}}).object
    create(store, "pods", "loose", replica_set, containers=[{"name": "c"}])
    delete(store, hub, "replicasets", replica_set, policy="Foreground")
    assert store.get("replicasets", "default", "web-abc")["metadata"]["finalizers"] == ["example.com/hold", FOREGROUND]
    gc.sync(REPLICA_SET)
    held = store.get("replicasets", "default", "web-abc")
    assert held["metadata"]["finalizers"] == ["example.com/hold"] and held["metadata"]["deletionTimestamp"]
    assert names(store, "pods") == []


@pytest.mark.asyncio
async def test_a_restart_resumes_the_owners_waiting_in_the_foreground(tmp_path):
    first = Store(tmp_path / "objects.db", clock=lambda: T0)
    delete(first, Hub(first), "deployments", workload(first), policy="Foreground")
    first.close()  # stopped before the collector ran

    store = Store(tmp_path / "objects.db", clock=lambda: T0)
    hub = Hub(store)
    task = asyncio.create_task(GarbageCollector(store, hub, lambda: T0).run())
    try:
        await until(lambda: names(store, "pods") == ["placed"] and store.get(
            "pods", "default", "placed")["metadata"].get("deletionTimestamp"), "the pods deleted")
        assert names(store, "deployments") == ["web"]
        delete(store, hub, "pods", store.get("pods", "default", "placed"), grace=0)
        await until(lambda: names(store, "deployments") == [], "the Deployment gone")
        assert names(store, "replicasets") == []
    finally:
        task.cancel()
        store.close()


def test_owners_of_each_other_do_not_wait_for_ever(store):
    hub = Hub(store)
    gc = GarbageCollector(store, hub, lambda: T0)
    first = create(store, "replicasets", "first")
    second = create(store, "replicasets", "second", first)
    store.update("replicasets", {**first, "metadata": {**first["metadata"], "ownerReferences": [ref(second)]}})
    delete(store, hub, "replicasets", store.get("replicasets", "default", "first"), policy="Foreground")
    gc.sync(("replicasets", "default/first"))  # the second, owner of a deleting one, unblocks its own owner
    second = store.get("replicasets", "default", "second")
    assert second["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is False
    assert ownership.deleting_dependents(second) and names(store, "replicasets") == ["second"]
    gc.sync(("replicasets", "default/second"))
    assert names(store, "replicasets") == []
