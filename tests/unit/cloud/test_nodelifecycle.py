"""The node lifecycle controller: its decisions from tables, the controller on a real store with a fake clock."""
import asyncio
import datetime as dt

import pytest

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.nodelifecycle import (
    UNREACHABLE,
    NodeLifecycle,
    Probe,
    heartbeat,
    node_is_stale,
    observe,
    pod_not_ready,
    unknown_conditions,
    unreachable_taints,
)
from edgeworkers.cloud.store import MODIFIED, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.timefmt import format_time
from tests.unit.clock import Clock

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
NOW = "2026-11-29T12:01:00Z"
KUBELET = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")


def condition(kind, status="True", beat="2026-11-29T12:00:00Z", since="2026-11-29T11:00:00Z", reason="Kubelet"):
    return {"type": kind, "status": status, "lastHeartbeatTime": beat, "lastTransitionTime": since,
            "reason": reason, "message": f"{kind} {status}"}


def node(name="edge-1", beat="2026-11-29T12:00:00Z", ready="True", taints=None):
    conditions = [condition(k, "False", beat) for k in KUBELET[:3]] + [condition("Ready", ready, beat)]
    spec = {"taints": taints} if taints else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {"conditions": conditions}}


def lease(name="edge-1", renewed="2026-11-29T12:00:00.123456Z"):
    return {"metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renewed}}


def pod(name, node_name, ready=True):
    conditions = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-29T11:00:00Z"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": None,
                           "lastTransitionTime": "2026-11-29T11:00:00Z"})
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running", "conditions": conditions}}


# -- decisions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("the_lease, the_node, want", [
    (lease(), node(), ("2026-11-29T12:00:00.123456Z", "2026-11-29T12:00:00Z")),
    (None, node(beat="2026-11-29T12:00:10Z"), ("", "2026-11-29T12:00:10Z")),
    (lease(), {"metadata": {"name": "edge-1"}}, ("2026-11-29T12:00:00.123456Z", "")),
    ({"metadata": {}, "spec": {}}, {"metadata": {}, "status": {}}, ("", "")),
])
def test_heartbeat(the_lease, the_node, want):
    assert heartbeat(the_lease, the_node) == want


@pytest.mark.parametrize("previous, beat, want", [
    (None, ("a", "b"), Probe(("a", "b"), T0)),  # first look: the count starts now, whatever the node's clock says
    (Probe(("a", "b"), T0 - dt.timedelta(seconds=30)), ("a", "b"), Probe(("a", "b"), T0 - dt.timedelta(seconds=30))),
    (Probe(("a", "b"), T0 - dt.timedelta(seconds=30)), ("a2", "b"), Probe(("a2", "b"), T0)),  # lease renewed
    (Probe(("a", "b"), T0 - dt.timedelta(seconds=30)), ("a", "b2"), Probe(("a", "b2"), T0)),  # status posted
])
def test_observe(previous, beat, want):
    assert observe(previous, beat, T0) == want


@pytest.mark.parametrize("silent_s, grace_s, want", [(0, 40, False), (40, 40, False), (40.5, 40, True),
                                                     (7, 6, True)])
def test_node_is_stale(silent_s, grace_s, want):
    assert node_is_stale(Probe(("a", ""), T0), T0 + dt.timedelta(seconds=silent_s), grace_s) is want


def test_unknown_conditions_turn_kubelets_conditions_unknown_and_keep_their_heartbeat():
    network = {"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated"}
    before = [*node()["status"]["conditions"], network]
    after = unknown_conditions(before, NOW, "2026-11-29T10:00:00Z")
    assert after[-1] == network  # not the kubelet's: left alone, as kube's controller does
    for old, new in zip(before[:4], after[:4], strict=True):
        assert new == {"type": old["type"], "status": "Unknown", "reason": "NodeStatusUnknown",
                       "message": "Kubelet stopped posting node status.", "lastTransitionTime": NOW,
                       "lastHeartbeatTime": old["lastHeartbeatTime"]}
    assert before[3]["status"] == "True"  # the input is not changed
    assert unknown_conditions(after, "2026-11-29T13:00:00Z", "x") == after  # already Unknown: transition time kept


def test_unknown_conditions_add_those_kubelet_never_posted():
    after = unknown_conditions([condition("Ready")], NOW, "2026-11-29T10:00:00Z")
    assert [c["type"] for c in after] == ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
    assert after[1] == {"type": "MemoryPressure", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.", "lastHeartbeatTime": "2026-11-29T10:00:00Z",
                        "lastTransitionTime": NOW}


UNREACHABLE_TAINT = {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": "2026-11-29T11:00:00Z"}
OTHER_TAINT = {"key": "dedicated", "value": "edge", "effect": "NoSchedule"}
EVICTING_TAINT = {"key": UNREACHABLE, "effect": "NoExecute"}


@pytest.mark.parametrize("taints, unreachable, want", [
    ([], True, [{"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": NOW}]),
    ([OTHER_TAINT], True, [OTHER_TAINT, {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": NOW}]),
    ([UNREACHABLE_TAINT], True, [UNREACHABLE_TAINT]),  # already there: timeAdded kept
    ([OTHER_TAINT, UNREACHABLE_TAINT], False, [OTHER_TAINT]),
    ([EVICTING_TAINT, UNREACHABLE_TAINT], False, [EVICTING_TAINT]),  # only the NoSchedule taint is ours
    ([], False, []),
])
def test_unreachable_taints(taints, unreachable, want):
    assert unreachable_taints(taints, unreachable, NOW) == want


@pytest.mark.parametrize("status, want", [
    (pod("p", "n")["status"], {"phase": "Running", "conditions": [
        pod("p", "n")["status"]["conditions"][0],
        {"type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": NOW}]}),
    (pod("p", "n", ready=False)["status"], None),
    (pod("p", "n", ready=None)["status"], None),  # no Ready condition (never ran): nothing to say
    ({"phase": "Pending"}, None),
])
def test_pod_not_ready(status, want):
    assert pod_not_ready(status, NOW) == want


def test_pod_not_ready_keeps_reason_and_message():
    status = {"conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "M",
                              "lastTransitionTime": "t0"}]}
    assert pod_not_ready(status, NOW)["conditions"] == [
        {"type": "Ready", "status": "False", "reason": "R", "message": "M", "lastTransitionTime": NOW}]


# -- the controller -------------------------------------------------------------------------------

@pytest.fixture
def cluster(tmp_path):
    clock = Clock(T0)
    store = Store(tmp_path / "objects.db", clock=clock)
    hub = Hub(store)
    events = []
    hub.add_listener(events.append)
    yield store, clock, NodeLifecycle(store, hub, clock, grace_period_s=40, period_s=5), events
    store.close()


def ready_of(obj):
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def renew(store, clock, name="edge-1"):
    """What the node does every 10 s: post its conditions and renew its Lease."""
    beat = format_time(clock())
    current = store.get("nodes", "", name)
    store.update("nodes", {**current, "status": node(name, beat)["status"]})
    current_lease = store.get("leases", "kube-node-lease", name)
    store.update("leases", {**current_lease, "spec": lease(name, clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))["spec"]})


def test_a_silent_node_turns_unknown_and_its_pods_not_ready_but_stay(cluster):
    store, clock, lifecycle, events = cluster
    store.create("nodes", node())
    store.create("nodes", node("edge-2"))
    store.create("leases", lease())
    store.create("leases", lease("edge-2"))
    for p in (pod("web", "edge-1"), pod("fresh", "edge-1", ready=None), pod("elsewhere", "edge-2")):
        store.create("pods", p)
    lifecycle.monitor()
    for _ in range(8):  # edge-2 keeps beating; edge-1 is silent for exactly the grace period
        clock.advance(5)
        renew(store, clock, "edge-2")
        lifecycle.monitor()
    assert events == []

    clock.advance(1)
    lifecycle.monitor()
    silent = store.get("nodes", "", "edge-1")
    assert [(c["type"], c["status"], c["reason"]) for c in silent["status"]["conditions"]] == [
        (kind, "Unknown", "NodeStatusUnknown") for kind in KUBELET]
    assert ready_of(silent)["lastHeartbeatTime"] == "2026-11-29T12:00:00Z"
    assert ready_of(silent)["lastTransitionTime"] == "2026-11-29T12:00:41Z"
    assert silent["spec"]["taints"] == [{"key": UNREACHABLE, "effect": "NoSchedule",
                                         "timeAdded": "2026-11-29T12:00:41Z"}]
    web = store.get("pods", "default", "web")
    assert (ready_of(web)["status"], ready_of(web)["lastTransitionTime"]) == ("False", "2026-11-29T12:00:41Z")
    assert "deletionTimestamp" not in web["metadata"] and web["status"]["phase"] == "Running"  # never evicted
    assert store.get("pods", "default", "fresh")["status"]["conditions"] == pod("f", "x", None)["status"]["conditions"]
    assert ready_of(store.get("pods", "default", "elsewhere"))["status"] == "True"
    assert ready_of(store.get("nodes", "", "edge-2"))["status"] == "True"
    assert [(e.type, e.resource, e.object["metadata"]["name"]) for e in events] == [
        (MODIFIED, "nodes", "edge-1"), (MODIFIED, "pods", "web")]


def test_a_node_is_marked_once_per_silence_and_untainted_when_it_is_back(cluster):
    store, clock, lifecycle, events = cluster
    store.create("nodes", node())
    store.create("leases", lease())
    store.create("pods", pod("web", "edge-1"))
    lifecycle.monitor()
    clock.advance(41)
    lifecycle.monitor()
    assert len(events) == 2
    web = store.get("pods", "default", "web")
    store.update("pods", {**web, "status": pod("web", "edge-1")["status"]})  # Ready again: not by the node
    clock.advance(300)
    lifecycle.monitor()
    assert len(events) == 2  # still silent: marked already
    assert ready_of(store.get("pods", "default", "web"))["status"] == "True"

    renew(store, clock)  # back: the node posts Ready=True itself
    lifecycle.monitor()
    back = store.get("nodes", "", "edge-1")
    assert ready_of(back)["status"] == "True" and "taints" not in back["spec"]
    assert [e.resource for e in events[2:]] == ["nodes"]  # only the taint went; conditions are the node's

    clock.advance(41)  # silent again: marked again
    lifecycle.monitor()
    assert ready_of(store.get("nodes", "", "edge-1"))["status"] == "Unknown"
    assert ready_of(store.get("pods", "default", "web"))["status"] == "False"


def test_the_count_starts_when_the_controller_first_looks(cluster):
    """A lease last renewed long ago (the server was down, or the node's clock is behind) gets a full grace."""
    store, clock, lifecycle, events = cluster
    store.create("nodes", node(beat="2026-11-29T10:00:00Z"))
    store.create("leases", lease(renewed="2026-11-29T10:00:00.000000Z"))
    lifecycle.monitor()
    clock.advance(40)
    lifecycle.monitor()
    assert events == []
    clock.advance(1)
    lifecycle.monitor()
    assert ready_of(store.get("nodes", "", "edge-1"))["status"] == "Unknown"


def test_a_node_without_a_lease_or_status_is_marked_from_its_creation(cluster):
    store, clock, lifecycle, _events = cluster
    store.create("nodes", {"metadata": {"name": "bare"}})
    lifecycle.monitor()
    clock.advance(41)
    lifecycle.monitor()
    bare = store.get("nodes", "", "bare")
    assert [(c["type"], c["status"], c["reason"], c["lastHeartbeatTime"]) for c in bare["status"]["conditions"]] == [
        (kind, "Unknown", "NodeStatusNeverUpdated", "2026-11-29T12:00:00Z")
        for kind in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")]
    assert [t["key"] for t in bare["spec"]["taints"]] == [UNREACHABLE]


@pytest.mark.asyncio
async def test_the_server_runs_the_controller_with_the_settings(aiohttp_client, settings):
    fast = settings.model_copy(update={"node_monitor_grace_period_s": 0.0, "node_monitor_period_s": 0.01})
    client = await aiohttp_client(create_app(fast, "t"), headers={"Authorization": "Bearer t"})
    resp = await client.post("/api/v1/nodes", json=node())
    assert resp.status == 201

    async def unknown() -> bool:
        got = await (await client.get("/api/v1/nodes/edge-1")).json()
        return ready_of(got)["status"] == "Unknown"

    async with asyncio.timeout(5):
        while not await unknown():
            await asyncio.sleep(0.01)
