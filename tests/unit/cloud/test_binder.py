import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from edgeworkers.cloud import placement
from edgeworkers.cloud.binder import Binder, bound, choose_node, unschedulable
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def node(name, ready=True, labels=None, unschedulable_=False):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"unschedulable": True} if unschedulable_ else {},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(name="p", selector=None, node_name=""):
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if selector:
        spec["nodeSelector"] = selector
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec, "status": {"phase": "Pending"}}


@pytest.mark.parametrize("nodes, counts, selector, want", [
    ([node("a")], {}, None, ("a", "")),
    ([node("a"), node("b")], {"a": 2, "b": 1}, None, ("b", "")),
    ([node("b"), node("a")], {}, None, ("a", "")),
    ([node("a", labels={"zone": "x"}), node("b")], {"a": 5}, {"zone": "x"}, ("a", "")),
    ([node("a")], {}, {"zone": "x"},
     (None, "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")),
    ([node("a", ready=False), node("b", labels={"zone": "y"}), node("c", unschedulable_=True)], {}, {"zone": "x"},
     (None, ("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable."))),
    ([], {}, None, (None, "no nodes available to schedule pods")),
])
def test_choose_node(nodes, counts, selector, want):
    placed = {name: [pod(f"{name}-{i}", node_name=name) for i in range(count)] for name, count in counts.items()}
    decision = choose_node(pod(selector=selector), nodes, placed)
    assert (decision.node, decision.message) == want


def test_a_node_that_is_not_ready_takes_only_pods_tolerating_its_taint():
    silent = node("a")
    silent["status"]["conditions"][0]["status"] = "Unknown"
    refused = choose_node(pod(), [silent], {})
    assert refused.message == ("0/1 nodes are available: 1 node(s) had untolerated taint "
                               "{node.kubernetes.io/unreachable: }.")
    tolerant = pod()
    tolerant["spec"]["tolerations"] = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]
    assert choose_node(tolerant, [silent], {}).node == "a"


def affine(*terms):
    placed = pod()
    placed["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}
    return placed


@pytest.mark.parametrize("term, fits", [
    ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x", "y"]}]}, ["a"]),
    ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["x"]}]}, ["b", "c"]),
    ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, ["a", "b"]),
    ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, ["c"]),
    ({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}, ["b"]),
    ({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]}, ["a"]),
    ({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}, ["c"]),
    ({"matchExpressions": [{"key": "zone", "operator": "Exists"}, {"key": "cores", "operator": "Gt",
                                                                     "values": ["2"]}]}, ["b"]),
    ({}, []),  # an empty term matches nothing
])
def test_required_node_affinity(term, fits):
    nodes = [node("a", labels={"zone": "x", "cores": "2"}), node("b", labels={"zone": "z", "cores": "8"}), node("c")]
    assert [n["metadata"]["name"] for n in nodes if placement.matches_node(affine(term), n)] == fits
    either = affine({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}, term)
    assert placement.matches_node(either, nodes[2])  # terms are ORed


def sized(name, cpu="", memory="", node_name=""):
    placed = pod(name, node_name=node_name)
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    placed["spec"]["containers"][0]["resources"] = {"requests": requests}
    return placed


def test_requests_fit_what_the_node_has_left():
    small = {**node("small"), "status": {**node("small")["status"],
                                         "allocatable": {"cpu": "2", "memory": "1Gi", "pods": "3"}}}
    big = {**node("big"), "status": {**node("big")["status"], "allocatable": {"cpu": "8", "memory": "8Gi",
                                                                               "pods": "110"}}}
    busy = {"small": [sized("s1", cpu="1500m", node_name="small")]}
    assert choose_node(sized("p", cpu="500m"), [small], busy).node == "small"
    too_much = choose_node(sized("p", cpu="600m", memory="2Gi"), [small], busy)
    assert too_much.message == "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    assert choose_node(sized("p", cpu="600m"), [small, big], busy).node == "big"
    full = {"small": [pod(f"s{i}", node_name="small") for i in range(3)]}
    assert choose_node(pod(), [small], full).message == "0/1 nodes are available: 1 Too many pods."


def test_a_pods_requests_are_kubes():
    spec = {"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}},
                           {"name": "b", "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}],
            "overhead": {"memory": "1Mi"}}
    asked = placement.pod_requests({"spec": spec}).amounts
    assert asked == {"cpu": Decimal(1), "memory": Decimal(65 * 1024 * 1024)}
    assert placement.pod_requests({"spec": {"containers": [{"resources": {"requests": {"cpu": "x"}}}]}}).amounts == {}


def test_bound_sets_the_node_and_a_true_pod_scheduled_condition():
    new = bound(pod(), "a", "2026-01-01T00:00:00Z")
    assert new["spec"]["nodeName"] == "a"
    assert new["status"]["conditions"] == [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]


def test_unschedulable_is_written_once_per_message():
    marked = unschedulable(pod(), "no nodes available to schedule pods", "t0")
    condition = marked["status"]["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert unschedulable(marked, "no nodes available to schedule pods", "t1") is None
    assert unschedulable(marked, "other", "t1")["status"]["conditions"][0]["lastTransitionTime"] == "t0"


@pytest.fixture
def cluster(tmp_path):
    store = Store(tmp_path / "objects.db", clock=lambda: T0)
    hub = Hub(store)
    yield store, hub, Binder(store, hub, lambda: T0)
    store.close()


def test_a_pending_pod_waits_for_a_ready_node_then_binds(cluster):
    store, hub, binder = cluster
    hub.publish(store.create("pods", pod("web")))
    assert binder.bind_pending() == 0
    waiting = store.get("pods", "default", "web")
    assert waiting["status"]["conditions"][0]["reason"] == "Unschedulable"
    hub.publish(store.create("nodes", node("edge-1")))
    assert binder.bind_pending() == 1
    placed = store.get("pods", "default", "web")
    assert placed["spec"]["nodeName"] == "edge-1"
    assert placed["status"]["conditions"][0]["status"] == "True"
    events = [(e["type"], e["reason"], e["message"], e["involvedObject"]["name"]) for e in store.list("events")]
    assert sorted(events) == [
        ("Normal", "Scheduled", "Successfully assigned default/web to edge-1", "web"),
        ("Warning", "FailedScheduling", "no nodes available to schedule pods", "web"),
    ]


def test_pods_spread_over_nodes_by_count(cluster):
    store, _hub, binder = cluster
    for n in ("a", "b"):
        store.create("nodes", node(n))
    store.create("pods", pod("old", node_name="a"))
    for i in range(3):
        store.create("pods", pod(f"p{i}"))
    binder.bind_pending()
    nodes = sorted(p["spec"]["nodeName"] for p in store.list("pods"))
    assert nodes == ["a", "a", "b", "b"]


def test_a_pass_that_fails_keeps_the_pods_it_did_not_place(cluster, monkeypatch):
    store, hub, binder = cluster
    hub.publish(store.create("nodes", node("a")))
    binder.bind_pending()  # the first, full pass: nothing to place yet
    for name in ("p1", "p2", "p3"):
        hub.publish(store.create("pods", pod(name)))
    real_update, calls = store.update, []

    def failing_second_write(resource, obj):
        calls.append(obj["metadata"]["name"])
        if len(calls) == 2:
            raise OSError("disk full")
        return real_update(resource, obj)

    monkeypatch.setattr(store, "update", failing_second_write)
    with pytest.raises(OSError):
        binder.bind_pending()
    monkeypatch.setattr(store, "update", real_update)
    assert binder.bind_pending() == 2  # p2 and p3, left by the failed pass
    assert {p["metadata"]["name"]: p["spec"].get("nodeName") for p in store.list("pods")} == \
        {"p1": "a", "p2": "a", "p3": "a"}


@pytest.mark.asyncio
async def test_the_run_loop_binds_when_a_node_appears(cluster):
    store, hub, binder = cluster
    task = asyncio.create_task(binder.run())
    try:
        hub.publish(store.create("pods", pod("web")))
        hub.publish(store.create("nodes", node("edge-1")))
        async with asyncio.timeout(2):
            while not store.get("pods", "default", "web")["spec"].get("nodeName"):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert store.get("pods", "default", "web")["spec"]["nodeName"] == "edge-1"


def test_node_loads_follow_the_pods_events():
    loads = placement.NodeLoads([sized("a1", cpu="100m", node_name="a"), pod("waiting")])
    assert list(loads) == ["a"] and loads["a"].requests.amounts == {"cpu": Decimal("0.1")}
    second = sized("a2", cpu="200m", node_name="a")
    loads.add(second)
    assert len(loads["a"]) == 2 and loads["a"].requests.amounts == {"cpu": Decimal("0.3")}
    done = {**second, "status": {"phase": "Succeeded"}}
    loads.remove(second)
    loads.add(done)  # a pod that ended frees its room
    assert [p["metadata"]["name"] for p in loads["a"]] == ["a1"]
    assert loads.get("b", ()) == ()


def test_the_binder_keeps_each_nodes_pods_from_the_events_and_lists_them_again_after_a_rollback(cluster):
    store, hub, binder = cluster
    small = {**node("a"), "status": {**node("a")["status"], "allocatable": {"cpu": "1", "pods": "110"}}}
    hub.publish(store.create("nodes", small))
    hub.publish(store.create("pods", sized("p1", cpu="600m")))
    assert binder.bind_pending() == 1
    hub.publish(store.create("pods", sized("p2", cpu="600m")))
    assert binder.bind_pending() == 0  # p1's binding counted: no room left
    hub.publish(store.delete("pods", "default", "p1"))
    hub.publish(store.create("pods", sized("p3", cpu="600m")))
    assert binder.bind_pending() == 1  # p1's room is free again
    binder._retry_all()
    hub.publish(store.create("pods", sized("p4", cpu="600m")))
    assert binder.bind_pending() == 0  # listed again from the store: p3 is there


def test_a_heartbeat_looks_at_no_waiting_pod_again_but_a_label_does(cluster):
    store, hub, binder = cluster
    hub.publish(store.create("nodes", node("a")))
    hub.publish(store.create("pods", pod("web", selector={"zone": "x"})))
    assert binder.bind_pending() == 0
    current = store.get("nodes", "", "a")
    beat = {**current, "status": {**current["status"], "conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:10Z"}]}}
    hub.publish(store.update("nodes", beat))
    assert not binder._everything
    labelled = store.get("nodes", "", "a")
    hub.publish(store.update("nodes", {**labelled, "metadata": {**labelled["metadata"], "labels": {"zone": "x"}}}))
    assert binder.bind_pending() == 1
