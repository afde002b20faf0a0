"""Dependents of a deleted owner: deleted when no owner is left, released otherwise or with ``Orphan``."""
import datetime as dt

import pytest

from edgeworkers.cloud.ownership import collect, missing_owners
from edgeworkers.cloud.store import DELETED, MODIFIED, Store

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "objects.db", clock=lambda: T0)
    yield s
    s.close()


def owned_by(*owners):
    return [{"apiVersion": "v1", "kind": o["kind"], "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}
            for o in owners]


def node(store, name):
    return store.create("nodes", {"metadata": {"name": name}}).object


def lease(store, name, *owners):
    meta = {"name": name, "namespace": "kube-node-lease", "ownerReferences": owned_by(*owners)}
    return store.create("leases", {"metadata": meta, "spec": {"holderIdentity": name}}).object


def delete(store, obj, resource, policy="Background"):
    meta = obj["metadata"]
    store.delete(resource, meta.get("namespace", ""), meta["name"])
    return collect(store, {meta["uid"]}, policy)


def test_a_nodes_lease_goes_with_the_node(store):
    edge = node(store, "edge-1")
    lease(store, "edge-1", edge)
    events = delete(store, edge, "nodes")
    assert [(e.type, e.resource, e.object["metadata"]["name"]) for e in events] == [(DELETED, "leases", "edge-1")]
    assert store.find("leases", "kube-node-lease", "edge-1") is None


def test_orphan_keeps_the_dependent_without_the_reference(store):
    edge = node(store, "edge-1")
    lease(store, "edge-1", edge)
    [event] = delete(store, edge, "nodes", policy="Orphan")
    assert event.type == MODIFIED
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
                                           "ownerReferences": owned_by({**holder, "kind": "ConfigMap"})},
                              "spec": spec})
    delete(store, edge, "nodes")
    assert store.find("configmaps", "default", "holder") is None
    assert store.find("pods", "default", "loose") is None
    placed = store.get("pods", "default", "placed")
    assert placed["metadata"]["deletionGracePeriodSeconds"] == 30


def test_unowned_objects_are_left_alone(store):
    edge = node(store, "edge-1")
    store.create("leases", {"metadata": {"name": "other", "namespace": "kube-node-lease"}, "spec": {}})
    assert delete(store, edge, "nodes") == []
    assert store.find("leases", "kube-node-lease", "other") is not None


def test_owners_gone_before_a_start_are_found(store):
    edge = node(store, "edge-1")
    lease(store, "edge-1", edge)
    lease(store, "orphaned", edge, {"kind": "Node", "metadata": {"name": "ghost", "uid": "gone"}})
    assert missing_owners(store) == {"gone"}
    store.delete("nodes", "", "edge-1")  # as by a server without garbage collection
    assert missing_owners(store) == {"gone", edge["metadata"]["uid"]}
    collect(store, missing_owners(store), "Background")
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
