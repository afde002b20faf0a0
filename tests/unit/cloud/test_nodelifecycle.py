"""The node lifecycle controller: its decisions from tables, the controller on a real store with a fake clock."""
import asyncio
import datetime as dt

import pytest

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.nodelifecycle import (
    AUTONOMY_ANNOTATION,
    UNREACHABLE,
    NodeLifecycle,
    Probe,
    autonomous,
    eviction_taints,
    heartbeat,
    node_is_stale,
    observe,
    pod_not_ready,
    unknown_conditions,
    unreachable_taints,
)
from edgeworkers.cloud.store import MODIFIED, Store
from edgeworkers.cloud.tolerations import NOT_READY
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


# -- autonomy: kube's taint-based eviction for nodes annotated not autonomous -----------------------

NOT_AUTONOMOUS = {AUTONOMY_ANNOTATION: "false"}


@pytest.mark.parametrize("annotations, want", [
    (None, True), ({}, True), ({AUTONOMY_ANNOTATION: "true"}, True), ({AUTONOMY_ANNOTATION: ""}, True),
    (NOT_AUTONOMOUS, False), ({AUTONOMY_ANNOTATION: " False "}, False), ({"other": "false"}, True),
])
def test_autonomous(annotations, want):
    meta = {"name": "n", **({"annotations": annotations} if annotations is not None else {})}
    assert autonomous({"metadata": meta}) is want


NO_EXECUTE_UNREACHABLE = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-11-29T11:00:00Z"}
NO_EXECUTE_NOT_READY = {"key": NOT_READY, "effect": "NoExecute", "timeAdded": "2026-11-29T11:00:00Z"}
OWN_NO_EXECUTE = {"key": "dedicated", "effect": "NoExecute"}


@pytest.mark.parametrize("taints, ready, evicting, want", [
    ([], "Unknown", True, [{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": NOW}]),
    ([], "False", True, [{"key": NOT_READY, "effect": "NoExecute", "timeAdded": NOW}]),
    ([], "True", True, []),
    ([], None, True, []),
    ([], "Unknown", False, []),  # autonomous: never
    ([NO_EXECUTE_UNREACHABLE], "Unknown", True, [NO_EXECUTE_UNREACHABLE]),  # kept, timeAdded with it
    ([NO_EXECUTE_UNREACHABLE, OTHER_TAINT], "True", True, [OTHER_TAINT]),  # back: gone
    ([NO_EXECUTE_UNREACHABLE], "False", True, [{"key": NOT_READY, "effect": "NoExecute", "timeAdded": NOW}]),
    ([NO_EXECUTE_NOT_READY, UNREACHABLE_TAINT], "Unknown", False, [UNREACHABLE_TAINT]),  # turned autonomous
    ([OWN_NO_EXECUTE], "Unknown", False, [OWN_NO_EXECUTE]),  # an operator's taint is theirs
])
def test_eviction_taints(taints, ready, evicting, want):
    assert eviction_taints(taints, ready, evicting, NOW) == want


def tolerating(p, seconds=..., key=UNREACHABLE):
    """``p`` with a toleration of ``key`` (NoExecute), for ``seconds`` (``...``: without tolerationSeconds)."""
    toleration = {"key": key, "operator": "Exists", "effect": "NoExecute"}
    if seconds is not ...:
        toleration["tolerationSeconds"] = seconds
    p["spec"]["tolerations"] = [toleration]
    return p


def silent_fleet(store, lifecycle, annotations=None):
    """edge-1 (with ``annotations``) and its pods: ``plain`` tolerates nothing, ``default`` the unreachable taint for
    300 s (what admission gives every pod), ``short`` for 60 s, ``forever`` without a limit."""
    store.create("nodes", {**node(), "metadata": {"name": "edge-1", "annotations": annotations or {}}})
    store.create("leases", lease())
    store.create("pods", pod("plain", "edge-1"))
    store.create("pods", tolerating(pod("default", "edge-1"), 300))
    store.create("pods", tolerating(pod("short", "edge-1"), 60))
    store.create("pods", tolerating(pod("forever", "edge-1")))
    lifecycle.monitor()


def deleting(store):
    return sorted(p["metadata"]["name"] for p in store.list("pods") if "deletionTimestamp" in p["metadata"])


def test_a_silent_node_that_is_not_autonomous_is_tainted_noexecute_and_evicts_as_its_pods_tolerate(cluster):
    store, clock, lifecycle, _events = cluster
    silent_fleet(store, lifecycle, NOT_AUTONOMOUS)
    clock.advance(41)
    lifecycle.monitor()  # Unknown now: the NoExecute taint, and the pod that does not tolerate it goes at once

    silent = store.get("nodes", "", "edge-1")
    assert silent["spec"]["taints"] == [
        {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": "2026-11-29T12:00:41Z"},
        {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-11-29T12:00:41Z"}]
    assert deleting(store) == ["plain"]
    plain = store.get("pods", "default", "plain")
    # A graceful delete (the pod's own 30 s): the node confirms it when it returns, as with kube.
    assert plain["metadata"]["deletionTimestamp"] == "2026-11-29T12:01:11Z"
    assert plain["metadata"]["deletionGracePeriodSeconds"] == 30
    target = next(c for c in plain["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"]) == ("True", "DeletionByTaintManager")
    [event] = [e for e in store.list("events", "default") if e["reason"] == "TaintManagerEviction"]
    assert (event["type"], event["message"], event["involvedObject"]["name"], event["source"]["component"]) == (
        "Normal", "Marking for deletion Pod default/plain", "plain", "taint-eviction-controller")

    clock.advance(59)
    lifecycle.monitor()
    assert deleting(store) == ["plain"]
    clock.advance(1)  # 60 s after the taint
    lifecycle.monitor()
    assert deleting(store) == ["plain", "short"]
    clock.advance(239)
    lifecycle.monitor()
    assert deleting(store) == ["plain", "short"]
    clock.advance(1)  # 300 s: the default toleration has run out
    lifecycle.monitor()
    assert deleting(store) == ["default", "plain", "short"]
    clock.advance(86400)
    lifecycle.monitor()
    assert deleting(store) == ["default", "plain", "short"]  # tolerated without a limit: stays
    assert len([e for e in store.list("events", "default") if e["reason"] == "TaintManagerEviction"]) == 3


def test_an_autonomous_node_silent_for_long_keeps_every_pod(cluster):
    store, clock, lifecycle, _events = cluster
    silent_fleet(store, lifecycle)  # no annotation: autonomous
    for _ in range(3):
        clock.advance(400)
        lifecycle.monitor()
    assert ready_of(store.get("nodes", "", "edge-1"))["status"] == "Unknown"
    assert [t["effect"] for t in store.get("nodes", "", "edge-1")["spec"]["taints"]] == ["NoSchedule"]
    assert deleting(store) == []
    assert not [e for e in store.list("events", "default") if e["reason"] == "TaintManagerEviction"]


def test_a_node_back_before_the_toleration_runs_out_keeps_its_tolerating_pods(cluster):
    store, clock, lifecycle, _events = cluster
    silent_fleet(store, lifecycle, NOT_AUTONOMOUS)
    clock.advance(41)
    lifecycle.monitor()
    clock.advance(30)
    renew(store, clock)  # back: Ready=True
    lifecycle.monitor()
    assert "taints" not in store.get("nodes", "", "edge-1")["spec"]
    clock.advance(600)
    lifecycle.monitor()
    assert deleting(store) == ["plain"]  # only the one that tolerated nothing went


def test_the_annotation_set_while_a_node_is_unknown_starts_eviction_and_removed_it_stops(cluster):
    store, clock, lifecycle, _events = cluster
    silent_fleet(store, lifecycle)
    clock.advance(41)
    lifecycle.monitor()
    assert deleting(store) == []
    current = store.get("nodes", "", "edge-1")
    store.update("nodes", {**current, "metadata": {**current["metadata"], "annotations": NOT_AUTONOMOUS}})
    clock.advance(5)
    lifecycle.monitor()
    assert deleting(store) == ["plain"]
    current = store.get("nodes", "", "edge-1")
    store.update("nodes", {**current, "metadata": {**current["metadata"], "annotations": {}}})
    lifecycle.monitor()
    assert [t["effect"] for t in store.get("nodes", "", "edge-1")["spec"]["taints"]] == ["NoSchedule"]
    clock.advance(600)
    lifecycle.monitor()
    assert deleting(store) == ["plain"]


def test_an_operators_noexecute_taint_evicts_on_any_node_counted_from_when_first_seen(cluster):
    store, clock, lifecycle, _events = cluster
    store.create("nodes", node())
    store.create("leases", lease())
    store.create("pods", tolerating(pod("drained", "edge-1"), 60, key="maintenance"))
    store.create("pods", tolerating(pod("default", "edge-1"), 300))  # tolerates unreachable, not this one
    current = store.get("nodes", "", "edge-1")
    store.update("nodes", {**current, "spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}})  # by hand
    lifecycle.monitor()
    assert deleting(store) == ["default"]
    clock.advance(30)
    renew(store, clock)
    lifecycle.monitor()
    assert deleting(store) == ["default"]
    clock.advance(30)
    lifecycle.monitor()
    assert deleting(store) == ["default", "drained"]
    assert store.get("nodes", "", "edge-1")["spec"]["taints"] == [{"key": "maintenance", "effect": "NoExecute"}]
