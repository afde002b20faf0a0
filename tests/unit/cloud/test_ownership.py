"""Deletion with a propagation policy: dependents deleted when no owner is left, released otherwise or with ``Orphan``;
with ``Foreground`` the owner marked, to wait for them; an object's own finalizers honoured."""
import datetime as dt

import pytest

from edgeworkers.cloud import ownership
from edgeworkers.cloud.ownership import FOREGROUND, collect, missing_owners
from edgeworkers.cloud.store import DELETED, MODIFIED, Store

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "objects.db", clock=lambda: T0)
    yield s
    s.close()


def owned_by(*owners, block=None):
    return [{"apiVersion": o.get("apiVersion", "v1"), "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], **({"blockOwnerDeletion": block} if block is not None else {})}
            for o in owners]


def node(store, name):
    return store.create("nodes", {"metadata": {"name": name}}).object


def lease(store, name, *owners):
    meta = {"name": name, "namespace": "kube-node-lease", "ownerReferences": owned_by(*owners)}
    return store.create("leases", {"metadata": meta, "spec": {"holderIdentity": name}}).object


def configmap(store, name, *owners, finalizers=None, block=None):
    meta = {"name": name, "namespace": "default", "ownerReferences": owned_by(*owners, block=block),
            **({"finalizers": finalizers} if finalizers else {})}
    return store.create("configmaps", {"metadata": meta}).object


def delete(store, obj, resource, policy="Background", grace=None):
    return ownership.delete(store, resource, obj, grace, policy)[1]


def test_a_nodes_lease_goes_with_the_node(store):
    edge = node(store, "edge-1")
    lease(store, "edge-1", edge)
    events = delete(store, edge, "nodes")
    assert [(e.type, e.resource, e.object["metadata"]["name"]) for e in events] == [
        (DELETED, "nodes", "edge-1"), (DELETED, "leases", "edge-1")]
    assert store.find("leases", "kube-node-lease", "edge-1") is None


def test_orphan_keeps_the_dependent_without_the_reference(store):
    edge = node(store, "edge-1")
    lease(store, "edge-1", edge)
    released, deleted = delete(store, edge, "nodes", policy="Orphan")
    assert (released.type, deleted.type) == (MODIFIED, DELETED)
    assert "ownerReferences" not in store.get("leases", "kube-node-lease", "edge-1")["metadata"]


def test_a_dependent_with_another_owner_left_only_loses_the_reference(store):
    first, second = node(store, "a"), node(store, "b")
    lease(store, "shared", first, second)
    delete(store, first, "nodes")
    refs = store.get("leases", "kube-node-lease", "shared")["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["b"]
    delete(store, second, "nodes")
    assert store.find("leases", "kube-node-lease", "shared") is None


def test_dependents_of_dependents_go_too_and_a_pod_on_a_node_gracefully(store):
    edge = node(store, "edge-1")
    holder = store.create("configmaps", {"metadata": {"name": "holder", "namespace": "default",
                                                      "ownerReferences": owned_by(edge)}}).object
    for name, node_name in (("loose", None), ("placed", "edge-1")):
        spec = {"containers": [{"name": "c"}], **({"nodeName": node_name} if node_name else {})}
        store.create("pods", {"metadata": {"name": name, "namespace": "default",
                                           "ownerReferences": owned_by(holder)},
                              "spec": spec})
    delete(store, edge, "nodes")
    assert store.find("configmaps", "default", "holder") is None
    assert store.find("pods", "default", "loose") is None
    placed = store.get("pods", "default", "placed")
    assert placed["metadata"]["deletionGracePeriodSeconds"] == 30


def test_unowned_objects_are_left_alone(store):
    edge = node(store, "edge-1")
    store.create("leases", {"metadata": {"name": "other", "namespace": "kube-node-lease"}, "spec": {}})
    assert [e.resource for e in delete(store, edge, "nodes")] == ["nodes"]
    assert store.find("leases", "kube-node-lease", "other") is not None


def test_owners_gone_before_a_start_are_found(store):
    edge = node(store, "edge-1")
    lease(store, "edge-1", edge)
    lease(store, "orphaned", edge, {"kind": "Node", "metadata": {"name": "ghost", "uid": "gone"}})
    assert missing_owners(store) == {"gone"}
    store.delete("nodes", "", "edge-1")  # as by a server without garbage collection
    assert missing_owners(store) == {"gone", edge["metadata"]["uid"]}
    collect(store, missing_owners(store))
    assert store.list("leases") == []


def test_owners_of_kinds_not_served_here_keep_their_dependents(store):
    edge = node(store, "edge-1")
    replicaset = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "name": "web-abc", "uid": "rs-uid"}
    store.create("pods", {"metadata": {"name": "web", "namespace": "default",
                                       "ownerReferences": [replicaset, *owned_by(edge)]},
                          "spec": {"containers": [{"name": "c"}]}})
    assert missing_owners(store) == set()
    delete(store, edge, "nodes")
    assert store.get("pods", "default", "web")["metadata"]["ownerReferences"] == [replicaset]


# -- foreground and finalizers -------------------------------------------------------------------------------------

def test_foreground_marks_an_owner_with_dependents_and_leaves_them_to_the_collector(store):
    parent = configmap(store, "parent")
    configmap(store, "child", {**parent, "kind": "ConfigMap"}, block=True)
    answer, [event] = ownership.delete(store, "configmaps", parent, None, "Foreground")
    assert event.type == MODIFIED and answer == event.object
    meta = store.get("configmaps", "default", "parent")["metadata"]
    assert meta["finalizers"] == [FOREGROUND] and meta["deletionTimestamp"] == "2026-01-02T03:04:05Z"
    assert meta["deletionGracePeriodSeconds"] == 0 and ownership.deleting_dependents(store.get(
        "configmaps", "default", "parent"))
    assert store.find("configmaps", "default", "child") is not None
    again, events = ownership.delete(store, "configmaps", store.get("configmaps", "default", "parent"), None,
                                     "Foreground")
    assert events == [] and again["metadata"]["resourceVersion"] == meta["resourceVersion"]


def test_foreground_deletes_an_owner_without_dependents_at_once(store):
    lonely = configmap(store, "lonely")
    assert [e.type for e in delete(store, lonely, "configmaps", policy="Foreground")] == [DELETED]


def test_a_background_delete_of_an_owner_waiting_in_the_foreground_deletes_it_now(store):
    parent = configmap(store, "parent")
    configmap(store, "child", {**parent, "kind": "ConfigMap"}, block=True)
    delete(store, parent, "configmaps", policy="Foreground")
    events = delete(store, store.get("configmaps", "default", "parent"), "configmaps")
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [(DELETED, "parent"), (DELETED, "child")]


def test_an_object_with_finalizers_of_its_own_stays_marked_until_they_are_removed(store):
    held = configmap(store, "held", finalizers=["example.com/hold"])
    child = configmap(store, "child", {**held, "kind": "ConfigMap"})
    [event] = delete(store, held, "configmaps")
    assert event.type == MODIFIED and event.object["metadata"]["deletionTimestamp"]
    assert event.object["metadata"]["finalizers"] == ["example.com/hold"]
    assert delete(store, event.object, "configmaps") == []  # a second delete changes nothing
    marked = store.get("configmaps", "default", "held")
    released = {**marked, "metadata": {**marked["metadata"], "finalizers": []}}
    assert ownership.finalized(marked, released) and not ownership.finalized(held, released)
    events = ownership.delete_finalized(store, "configmaps", marked)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [(DELETED, "held"), (DELETED, "child")]
    assert store.find("configmaps", "default", child["metadata"]["name"]) is None


def test_a_pod_in_its_graceful_period_is_not_finalized_by_an_update(store):
    pod = store.create("pods", {"metadata": {"name": "p", "namespace": "default", "finalizers": ["example.com/x"]},
                                "spec": {"containers": [{"name": "c"}], "nodeName": "edge-1"}}).object
    [event] = delete(store, pod, "pods")
    assert event.object["metadata"]["deletionGracePeriodSeconds"] == 30
    assert not ownership.finalized(event.object, {**event.object, "metadata": {"name": "p"}})
    [confirmed] = delete(store, event.object, "pods", grace=0)  # the node's confirmation: its finalizer keeps it
    assert confirmed.object["metadata"]["deletionGracePeriodSeconds"] == 0
    assert confirmed.object["metadata"]["finalizers"] == ["example.com/x"]
