"""The ReplicaSet controller (and the ReplicationController manager) on a real store with a fake clock: sync, adoption
and release, deletion order, status, defaults and validation."""
import asyncio
import datetime as dt

import pytest

from edgeworkers.cloud import replicaset, workloads
from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.replicaset import (
    ReplicaFailure,
    ReplicaSetController,
    ReplicationManager,
    default_replica_set,
    default_replication_controller,
    deletion_order,
    validate_replica_set,
    validate_replication_controller,
)
from edgeworkers.cloud.store import MODIFIED, Event, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s import status
from edgeworkers.k8s.timefmt import format_time
from tests.unit.clock import Clock

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
LABELS = {"app": "web"}


def template(labels=None, **spec):
    return {"metadata": {"labels": dict(LABELS if labels is None else labels)},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def rs(name="web", replicas=3, selector=None, min_ready=0, **template_spec):
    spec = {"replicas": replicas, "selector": {"matchLabels": dict(selector or LABELS)},
            "template": template(**template_spec)}
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return default_replica_set({"metadata": {"name": name, "namespace": "default"}, "spec": spec})


@pytest.fixture
def cluster(tmp_path):
    clock = Clock(T0)
    store = Store(tmp_path / "objects.db", clock=clock)
    hub = Hub(store)
    yield store, hub, clock
    store.close()


@pytest.fixture
def controller(cluster):
    store, hub, clock = cluster
    return ReplicaSetController(store, hub, clock)


def pods_of(store, owner=None):
    pods = store.list("pods", "default")
    return [p for p in pods if owner is None or workloads.controlled_by(p, owner)]


def events(store, reason=None):
    return [e["message"] for e in store.list("events", "default") if reason is None or e["reason"] == reason]


def set_pod(store, hub, pod, phase="Running", ready=None, since=T0, node="edge-1", restarts=0):
    """What a node reports: the pod bound, its phase and Ready condition."""
    pod = workloads.copy(store.get("pods", "default", pod["metadata"]["name"]))
    if node:
        pod["spec"]["nodeName"] = node
    pod["status"] = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready is not None:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                        "lastTransitionTime": format_time(since)}]
    event = store.update("pods", pod)
    hub.publish(event)
    return event.object


def test_a_replica_set_gets_its_pods_from_the_template(cluster, controller):
    store, _, _ = cluster
    owner = store.create("replicasets", rs()).object
    assert controller.sync(("default", "web")) is None
    pods = pods_of(store)
    assert len(pods) == 3
    for pod in pods:
        meta = pod["metadata"]
        assert meta["name"].startswith("web-") and meta["generateName"] == "web-"
        assert meta["labels"] == LABELS
        assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                            "uid": owner["metadata"]["uid"], "controller": True,
                                            "blockOwnerDeletion": True}]
        assert pod["spec"]["restartPolicy"] == "Always" and pod["status"] == {"phase": "Pending"}
    assert sorted(events(store, "SuccessfulCreate")) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    event = store.list("events", "default")[0]
    assert (event["involvedObject"]["kind"], event["source"]["component"]) == ("ReplicaSet", "replicaset-controller")
    # as kube's: the status counts the pods the sync started from; the new pods' events bring the next sync
    assert store.get("replicasets", "default", "web")["status"] == {"replicas": 0, "observedGeneration": 1}
    controller.sync(("default", "web"))
    assert len(pods_of(store)) == 3
    assert store.get("replicasets", "default", "web")["status"] == {
        "replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1}


def test_scaling_down_deletes_unscheduled_then_pending_then_not_ready_pods_first(cluster, controller):
    store, hub, _ = cluster
    store.create("replicasets", rs(replicas=4))
    controller.sync(("default", "web"))
    running, pending, not_ready, unscheduled = pods_of(store)
    set_pod(store, hub, running, ready=True)
    set_pod(store, hub, pending, phase="Pending")
    set_pod(store, hub, not_ready, ready=False)
    set_pod(store, hub, unscheduled, phase="Pending", node="")
    owner = workloads.copy(store.get("replicasets", "default", "web"))
    owner["spec"]["replicas"] = 1
    store.update("replicasets", owner)
    controller.sync(("default", "web"))
    assert store.find("pods", "default", unscheduled["metadata"]["name"]) is None  # not on a node: gone at once
    for pod in (pending, not_ready):  # on a node: deleted gracefully, the node confirms
        assert store.get("pods", "default", pod["metadata"]["name"])["metadata"]["deletionGracePeriodSeconds"] == 30
    assert "deletionTimestamp" not in store.get("pods", "default", running["metadata"]["name"])["metadata"]
    assert len(events(store, "SuccessfulDelete")) == 3
    assert f"Deleted pod: {pending['metadata']['name']}" in events(store, "SuccessfulDelete")
    controller.sync(("default", "web"))
    assert store.get("replicasets", "default", "web")["status"]["replicas"] == 1


def test_a_pod_deleted_or_finished_is_replaced(cluster, controller):
    store, hub, _ = cluster
    store.create("replicasets", rs(replicas=2))
    controller.sync(("default", "web"))
    gone, done = pods_of(store)
    hub.publish(store.delete("pods", "default", gone["metadata"]["name"]))
    set_pod(store, hub, done, phase="Succeeded")
    controller.sync(("default", "web"))
    pods = pods_of(store)
    assert len(pods) == 3  # the finished pod stays, not counted; two new ones
    assert len([p for p in pods if workloads.is_active(p)]) == 2
    controller.sync(("default", "web"))
    assert store.get("replicasets", "default", "web")["status"]["replicas"] == 2


def orphan(store, hub, name, labels):
    event = store.create("pods", {"metadata": {"name": name, "namespace": "default", "labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                                  "status": {"phase": "Pending"}})
    hub.publish(event)
    return event.object


def test_orphans_are_adopted_and_pods_that_no_longer_match_are_released(cluster, controller):
    store, hub, _ = cluster
    mine = orphan(store, hub, "mine", LABELS)
    orphan(store, hub, "other", {"app": "db"})
    owner = store.create("replicasets", rs(replicas=1)).object
    controller.sync(("default", "web"))
    assert len(pods_of(store)) == 2  # the orphan was adopted instead of a pod created
    assert workloads.controlled_by(store.get("pods", "default", "mine"), owner)
    assert "ownerReferences" not in store.get("pods", "default", "other")["metadata"]

    relabelled = workloads.copy(store.get("pods", "default", "mine"))
    relabelled["metadata"]["labels"] = {"app": "debug"}
    hub.publish(store.update("pods", relabelled))
    controller.sync(("default", "web"))
    assert "ownerReferences" not in store.get("pods", "default", "mine")["metadata"]  # released, kept
    [replacement] = pods_of(store, owner)
    assert replacement["metadata"]["name"].startswith("web-")
    assert mine["metadata"]["uid"] == store.get("pods", "default", "mine")["metadata"]["uid"]


def test_pods_of_another_controller_are_left_alone(cluster, controller):
    store, hub, _ = cluster
    pod = orphan(store, hub, "theirs", LABELS)
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "u",
                                           "controller": True}]
    hub.publish(store.update("pods", pod))
    store.create("replicasets", rs(replicas=1))
    controller.sync(("default", "web"))
    assert len(pods_of(store)) == 2
    assert store.get("pods", "default", "theirs")["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_a_replica_set_being_deleted_creates_nothing(cluster, controller):
    store, _, _ = cluster
    store.create("replicasets", rs())
    store.begin_deletion("replicasets", "default", "web", 0)
    controller.sync(("default", "web"))
    assert pods_of(store) == []
    assert store.get("replicasets", "default", "web")["status"]["replicas"] == 0


def test_ready_and_available_replicas_with_min_ready_seconds(cluster, controller):
    store, hub, clock = cluster
    store.create("replicasets", rs(replicas=3, min_ready=10))
    controller.sync(("default", "web"))
    first, second, third = pods_of(store)
    set_pod(store, hub, first, ready=True, since=T0 - dt.timedelta(seconds=30))
    set_pod(store, hub, second, ready=True, since=T0 - dt.timedelta(seconds=4))
    set_pod(store, hub, third, ready=False)
    assert controller.sync(("default", "web")) == 6  # the second becomes available 10 s after it turned Ready
    got = store.get("replicasets", "default", "web")["status"]
    assert (got["readyReplicas"], got["availableReplicas"]) == (2, 1)
    clock.advance(6)
    assert controller.sync(("default", "web")) is None
    assert store.get("replicasets", "default", "web")["status"]["availableReplicas"] == 2


def test_fully_labeled_replicas_count_pods_with_every_template_label(cluster, controller):
    store, hub, _ = cluster
    store.create("replicasets", rs(replicas=2, labels={"app": "web", "tier": "front"}))
    controller.sync(("default", "web"))
    pod = workloads.copy(pods_of(store)[0])
    del pod["metadata"]["labels"]["tier"]
    hub.publish(store.update("pods", pod))
    controller.sync(("default", "web"))
    got = store.get("replicasets", "default", "web")["status"]
    assert (got["replicas"], got["fullyLabeledReplicas"]) == (2, 1)


def test_a_failed_creation_sets_replica_failure_until_creations_succeed(cluster, controller, monkeypatch):
    store, _, clock = cluster
    real_create = workloads.create_pod
    attempts = []

    def refuse_after_first(store_, hub_, pod):
        attempts.append(pod)
        if len(attempts) > 1:
            raise status.forbidden("pods", "", 'exceeded quota: "pods"')
        return real_create(store_, hub_, pod)

    monkeypatch.setattr(workloads, "create_pod", refuse_after_first)
    store.create("replicasets", rs(replicas=10))
    with pytest.raises(ReplicaFailure):
        controller.sync(("default", "web"))
    assert len(attempts) == 3  # slow start: a batch of 1, then of 2 that failed, then no more
    assert len(pods_of(store)) == 1
    [condition] = store.get("replicasets", "default", "web")["status"]["conditions"]
    assert condition == {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": format_time(T0),
                         "reason": "FailedCreate", "message": condition["message"]}
    assert "exceeded quota" in condition["message"]
    assert events(store, "FailedCreate")[0].startswith("Error creating: ")

    monkeypatch.setattr(workloads, "create_pod", real_create)
    clock.advance(5)
    controller.sync(("default", "web"))
    assert "conditions" not in store.get("replicasets", "default", "web")["status"]
    controller.sync(("default", "web"))
    assert store.get("replicasets", "default", "web")["status"]["replicas"] == 10


def test_creations_per_sync_are_limited_by_the_burst(cluster):
    store, hub, clock = cluster
    store.create("replicasets", rs(replicas=5))
    ReplicaSetController(store, hub, clock, burst=2).sync(("default", "web"))
    assert len(pods_of(store)) == 2


def test_keys_for_pod_events_name_the_owner_or_the_owners_that_may_adopt(cluster, controller):
    store, hub, _ = cluster
    store.create("replicasets", rs())
    store.create("replicasets", rs(name="other", selector={"app": "other"}, labels={"app": "other"}))
    controller.sync(("default", "web"))
    owned = pods_of(store)[0]
    loose = orphan(store, hub, "loose", {"app": "other"})
    assert list(controller.keys_for(Event(MODIFIED, "pods", owned, 1))) == [("default", "web")]
    assert sorted(controller.keys_for(Event(MODIFIED, "pods", loose, 1, old=owned))) == [("default", "other"),
                                                                                           ("default", "web")]
    assert list(controller.keys_for(Event(MODIFIED, "configmaps", {"metadata": {"name": "x"}}, 1))) == []


def at(created_s, name, node="edge-1", phase="Running", ready_s=None, cost=None, restarts=0):
    pod = {"metadata": {"name": name, "creationTimestamp": format_time(T0 + dt.timedelta(seconds=created_s))},
           "spec": {"nodeName": node} if node else {},
           "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}]}}
    if ready_s is not None:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True",
                                        "lastTransitionTime": format_time(T0 + dt.timedelta(seconds=ready_s))}]
    if cost is not None:
        pod["metadata"]["annotations"] = {replicaset.DELETION_COST: str(cost)}
    return pod


@pytest.mark.parametrize("pods, first", [
    ([at(0, "placed", ready_s=1), at(0, "unplaced", node="", phase="Pending")], "unplaced"),
    ([at(0, "running"), at(0, "unknown", phase="Unknown"), at(0, "pending", phase="Pending")], "pending"),
    ([at(0, "running"), at(0, "unknown", phase="Unknown")], "unknown"),
    ([at(0, "ready", ready_s=1), at(0, "not-ready")], "not-ready"),
    ([at(0, "costly", ready_s=1, cost=100), at(0, "cheap", ready_s=1, cost=-5)], "cheap"),
    ([at(0, "alone", node="a", ready_s=1), at(0, "crowded", node="b", ready_s=1), at(0, "crowd", node="b",
                                                                                     ready_s=1, cost=1)], "crowded"),
    ([at(0, "long-ready", ready_s=1), at(0, "just-ready", ready_s=50)], "just-ready"),
    ([at(0, "steady", ready_s=1), at(0, "crashy", ready_s=1, restarts=4)], "crashy"),
    ([at(0, "old", ready_s=1), at(20, "new", ready_s=1)], "new"),
])
def test_deletion_order(pods, first):
    assert deletion_order(pods)[0]["metadata"]["name"] == first


# -- ReplicationControllers ----------------------------------------------------------------------------------------

def rc(name="web", replicas=2, selector=None):
    spec = {"replicas": replicas, "template": template()}
    if selector is not None:
        spec["selector"] = selector
    return default_replication_controller({"metadata": {"name": name, "namespace": "default"}, "spec": spec})


def test_a_replication_controller_defaults_its_selector_and_labels_from_the_template():
    got = rc(replicas=None)
    del got["spec"]["replicas"]
    got = default_replication_controller(got)
    assert got["spec"]["selector"] == LABELS and got["metadata"]["labels"] == LABELS
    assert got["spec"]["replicas"] == 1
    assert got["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert validate_replication_controller(got, None) == []


def test_a_replication_controller_keeps_its_pods(cluster):
    store, hub, clock = cluster
    owner = store.create("replicationcontrollers", rc()).object
    manager = ReplicationManager(store, hub, clock)
    manager.sync(("default", "web"))
    manager.sync(("default", "web"))
    pods = pods_of(store, owner)
    assert len(pods) == 2
    assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    assert pods[0]["metadata"]["ownerReferences"][0]["apiVersion"] == "v1"
    assert store.get("replicationcontrollers", "default", "web")["status"]["replicas"] == 2
    assert store.list("events", "default")[0]["source"]["component"] == "replication-controller"
    assert list(manager.keys_for(Event(MODIFIED, "pods", pods[0], 1))) == [("default", "web")]
    # the ReplicaSet controller does not take them
    store.create("replicasets", rs(name="rs"))
    ReplicaSetController(store, hub, clock).sync(("default", "rs"))
    assert len(pods_of(store, owner)) == 2


# -- validation -----------------------------------------------------------------------------------------------------

def messages(errors):
    return [e.message() for e in errors]


def test_a_replica_set_is_defaulted():
    got = default_replica_set({"metadata": {"name": "x"}, "spec": {"template": template()}})
    assert got["spec"]["replicas"] == 1
    spec = got["spec"]["template"]["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"]) == ("Always", 30)
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    assert "kind" not in got["spec"]["template"]


@pytest.mark.parametrize("change, want", [
    (lambda s: s.pop("selector"), ["spec.selector: Required value", 'spec.template.metadata.labels: Invalid value: '
                                   'map[string]string{"app":"web"}: `selector` does not match template `labels`']),
    (lambda s: s.update(selector={"matchLabels": {"app": "db"}}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match '
      'template `labels`']),
    (lambda s: s.update(selector={}), ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]),
    (lambda s: s.update(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
      "'NotIn'", 'spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"In"}]}: invalid '
      'label selector']),
    (lambda s: s.update(replicas=-1), ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    (lambda s: s["template"]["spec"].update(restartPolicy="Never"),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']),
    (lambda s: s["template"]["spec"].update(activeDeadlineSeconds=5),
     ["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"]),
    (lambda s: s["template"]["spec"]["containers"][0].pop("image"),
     ["spec.template.spec.containers[0].image: Required value"]),
    (lambda s: s.pop("template"), ["spec.template: Required value"]),
])
def test_replica_set_validation(change, want):
    obj = rs()
    change(obj["spec"])
    assert messages(validate_replica_set(obj, None)) == want


def test_a_replica_sets_selector_is_immutable():
    old, new = rs(), rs(selector={"app": "web", "x": "y"}, labels={"app": "web", "x": "y"})
    assert messages(validate_replica_set(new, old)) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web","x":"y"}}: field is immutable']
    assert validate_replica_set(rs(replicas=5), old) == []


@pytest.mark.parametrize("selector, want", [
    ({"app": "db"}, ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` '
                     'does not match template `labels`']),
    ({"app": "web"}, []),
])
def test_replication_controller_validation(selector, want):
    assert messages(validate_replication_controller(rc(selector=selector), None)) == want


def test_a_replication_controller_without_selector_or_template_labels():
    obj = {"metadata": {"name": "x", "namespace": "default"},
           "spec": {"template": template(labels={})}}
    assert messages(validate_replication_controller(default_replication_controller(obj), None)) == [
        "spec.selector: Required value"]


# -- through the API -------------------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_the_server_keeps_a_replica_sets_pods_and_refuses_an_invalid_one(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings, "t"), headers={"Authorization": "Bearer t"})
    body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": LABELS}, "template": template()}}
    resp = await client.post("/apis/apps/v1/namespaces/default/replicasets", json=body)
    assert resp.status == 201
    created = await resp.json()
    assert created["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst" and created["status"] == {}

    async def replicas() -> int:
        got = await (await client.get("/apis/apps/v1/namespaces/default/replicasets/web")).json()
        return got["status"].get("replicas", 0)

    await wait_for_async(lambda: replicas(), want=2)
    pods = (await (await client.get("/api/v1/namespaces/default/pods")).json())["items"]
    assert len(pods) == 2

    body["metadata"]["name"] = "bad"
    body["spec"]["selector"] = {"matchLabels": {"app": "db"}}
    resp = await client.post("/apis/apps/v1/namespaces/default/replicasets", json=body)
    assert resp.status == 422
    assert (await resp.json())["message"] == (
        'ReplicaSet.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"web"}: `selector` does not match template `labels`')


async def wait_for_async(probe, want, timeout_s=5.0):
    async with asyncio.timeout(timeout_s):
        while (got := await probe()) != want:
            await asyncio.sleep(0.01)
    return got


def test_a_sync_reads_its_own_pods_and_the_orphans_from_the_index_not_the_namespace(cluster, controller, monkeypatch):
    store, hub, _ = cluster
    store.create("replicasets", rs(name="other", replicas=3, selector={"app": "other"}, labels={"app": "other"}))
    controller.sync(("default", "other"))
    owner = store.create("replicasets", rs(replicas=2)).object
    orphan(store, hub, "loose", LABELS)
    real_list = store.list

    def list_but_not_pods(resource, namespace=None):
        assert resource != "pods", "a sync listed the namespace's pods"
        return real_list(resource, namespace)

    monkeypatch.setattr(store, "list", list_but_not_pods)
    controller.sync(("default", "web"))
    monkeypatch.undo()
    assert sorted(p["metadata"]["name"].startswith("web-") for p in pods_of(store, owner)) == [False, True]
    assert len(controller.pods.get(("default", owner["metadata"]["uid"]))) == 2  # the adopted orphan moved with it
    assert controller.pods.get(("default", None)) == []
