import pytest

from edgeworkers.cloud.binder import choose_node
from edgeworkers.cloud.nodelifecycle import NodeLifecycle
from edgeworkers.cloud.taints import condition_taints, tolerates, untolerated_taint
from tests.unit.clock import Clock
from tests.unit.cloud.test_binder import node as ready_node
from tests.unit.cloud.test_binder import pod
from tests.unit.cloud.test_nodelifecycle import T0, lease, node

DISK = {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule", "timeAdded": "T0"}
MEMORY = {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule", "timeAdded": "T0"}
OTHER = {"key": "dedicated", "value": "edge", "effect": "NoSchedule"}


def conditions(**statuses):
    return [{"type": kind, "status": status} for kind, status in statuses.items()]


@pytest.mark.parametrize("taints, given, want", [
    ([], conditions(DiskPressure="True", MemoryPressure="False"), [{**DISK, "timeAdded": "T1"}]),
    ([DISK], conditions(DiskPressure="True"), [DISK]),  # kept with its first timeAdded
    ([OTHER, DISK], conditions(DiskPressure="False"), [OTHER]),
    ([DISK, MEMORY], conditions(DiskPressure="Unknown", MemoryPressure="True"), [MEMORY]),
    ([OTHER], conditions(PIDPressure="True"),
     [OTHER, {"key": "node.kubernetes.io/pid-pressure", "effect": "NoSchedule", "timeAdded": "T1"}]),
    ([{**DISK, "effect": "NoExecute"}], [], [{**DISK, "effect": "NoExecute"}]),  # not the controller's
])
def test_condition_taints_follow_the_pressure_conditions(taints, given, want):
    assert condition_taints(taints, given, "T1") == want


@pytest.mark.parametrize("toleration, taint, want", [
    ({"operator": "Exists"}, DISK, True),
    ({"key": DISK["key"], "operator": "Exists", "effect": "NoSchedule"}, DISK, True),
    ({"key": DISK["key"], "operator": "Exists", "effect": "NoExecute"}, DISK, False),
    ({"key": "dedicated", "value": "edge"}, OTHER, True),
    ({"key": "dedicated", "operator": "Equal", "value": "cloud"}, OTHER, False),
    ({"key": MEMORY["key"], "operator": "Exists"}, DISK, False),
])
def test_tolerates(toleration, taint, want):
    assert tolerates(toleration, taint) is want


def test_untolerated_taint_ignores_prefer_no_schedule_and_tolerated_taints():
    tainted = {**ready_node("a"), "spec": {"taints": [{**OTHER, "effect": "PreferNoSchedule"}, MEMORY, DISK]}}
    tolerant = {**pod(), "spec": {**pod()["spec"], "tolerations": [{"key": MEMORY["key"], "operator": "Exists"}]}}
    assert untolerated_taint(tolerant, tainted) == DISK
    assert untolerated_taint(pod(), ready_node("a")) is None


def test_the_binder_places_no_pod_on_a_node_under_pressure():
    pressured = {**ready_node("a"), "spec": {"taints": [DISK]}}
    busy = [{"metadata": {"name": f"b{i}"}, "spec": {"nodeName": "b"}} for i in range(9)]
    decision = choose_node(pod(), [pressured, ready_node("b")], {"b": busy})
    assert decision.node == "b"
    decision = choose_node(pod(), [pressured], {})
    assert (decision.node, decision.message) == (
        None, "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }.")


def test_the_controller_taints_a_node_under_disk_pressure_and_lifts_it(tmp_path):
    from edgeworkers.cloud.store import Store
    from edgeworkers.cloud.watch import Hub

    clock = Clock(T0)
    store = Store(tmp_path / "objects.db", clock=clock)
    lifecycle = NodeLifecycle(store, Hub(store), clock)
    pressured = node()
    pressured["status"]["conditions"][1]["status"] = "True"  # DiskPressure
    store.create("nodes", pressured)
    store.create("leases", lease())
    lifecycle.monitor()
    assert [t["key"] for t in store.get("nodes", "", "edge-1")["spec"]["taints"]] == [DISK["key"]]
    relieved = store.get("nodes", "", "edge-1")
    relieved["status"]["conditions"][1]["status"] = "False"
    store.update("nodes", relieved)
    lifecycle.monitor()
    assert "taints" not in store.get("nodes", "", "edge-1")["spec"]
    store.close()
