"""Nodes that go silent, among three real ones: an autonomous node (the default) turns Ready=Unknown and keeps its
pods, neither evicted nor duplicated; a node annotated ``node.edgeworkers.io/autonomy=false`` gets the unreachable
NoExecute taint and its pods are evicted as they tolerate it, then stopped by the node when it returns."""
from __future__ import annotations

import json

from tests.integration.fleet.conftest import GRACE_S, Fleet
from tests.integration.loop.conftest import busybox_pod, hold_for
from tests.polling import wait_for

UNREACHABLE = "node.kubernetes.io/unreachable"


def taints(fleet: Fleet, node: str) -> set[tuple[str, str]]:
    spec = fleet.cloud.api.get(f"/api/v1/nodes/{node}").get("spec") or {}
    return {(t["key"], t["effect"]) for t in spec.get("taints") or []}


def uids(fleet: Fleet) -> dict[str, str]:
    listed = fleet.cloud.api.get("/api/v1/namespaces/default/pods")["items"]
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in listed}


def terminating(fleet: Fleet) -> set[str]:
    listed = fleet.cloud.api.get("/api/v1/namespaces/default/pods")["items"]
    return {p["metadata"]["name"] for p in listed if p["metadata"].get("deletionTimestamp")}


def test_a_stopped_autonomous_node_turns_unknown_and_its_pods_are_neither_evicted_nor_duplicated(fleet: Fleet) -> None:
    one, two, three = fleet.nodes
    fleet.apply(*(busybox_pod(f"on-{i}", node=node.node) for i, node in enumerate(fleet.nodes)))
    fleet.wait_running("on-0", "on-1", "on-2")
    before, containers = uids(fleet), two.running_ids("on-1")

    fleet.kill(two)  # SIGKILL: no goodbye

    fleet.wait_node_ready(two, "Unknown")
    assert (UNREACHABLE, "NoSchedule") in taints(fleet, two.node)
    assert (UNREACHABLE, "NoExecute") not in taints(fleet, two.node)
    assert fleet.node_ready(one) == fleet.node_ready(three) == "True"
    # Longer than a default toleration would allow is too long for a test: a pod that tolerates nothing stands in.
    fleet.apply(busybox_pod("untolerating", node=two.node, tolerations=[]))
    hold_for(lambda: uids(fleet).keys() == before.keys() | {"untolerating"} and not terminating(fleet)
             and two.running_ids("on-1") == containers, 2 * GRACE_S, "the pods kept, nothing evicted or added")
    assert fleet.placement() == {"on-0": one.node, "on-1": two.node, "on-2": three.node, "untolerating": two.node}
    assert fleet.running_pods()[one.node] == {"on-0"} and fleet.running_pods()[three.node] == {"on-2"}

    fleet.start(two)

    fleet.wait_running("on-1", "untolerating")
    assert two.running_ids("on-1") == containers  # the same containers: not restarted
    assert {name: uid for name, uid in uids(fleet).items() if name in before} == before
    wait_for(lambda: taints(fleet, two.node) == set(), 10, "the taint gone at the controller's next pass")


def test_a_node_that_is_not_autonomous_gets_its_pods_evicted_as_they_tolerate_it(fleet: Fleet) -> None:
    one, two, _ = fleet.nodes
    fleet.kubectl("annotate", "node", two.node, "node.edgeworkers.io/autonomy=false")
    short = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]
    forever = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
    fleet.apply(
        busybox_pod("goes", node=two.node, tolerations=short),
        busybox_pod("stays", node=two.node, tolerations=forever),
        busybox_pod("defaulted", node=two.node),  # DefaultTolerationSeconds: 300 s, longer than the test
        busybox_pod("elsewhere", node=one.node, tolerations=short),  # on an autonomous node
    )
    fleet.wait_running("goes", "stays", "defaulted", "elsewhere")

    fleet.kill(one)
    fleet.kill(two)

    fleet.wait_node_ready(two, "Unknown")
    assert (UNREACHABLE, "NoExecute") in taints(fleet, two.node)
    wait_for(lambda: terminating(fleet) == {"goes"}, 30, "the pod with a 5 s toleration evicted")
    goes = fleet.pod("goes")
    target = next(c for c in goes["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert target["reason"] == "DeletionByTaintManager"
    events = json.loads(fleet.kubectl("get", "events", "--field-selector", "involvedObject.name=goes",
                                      "-o", "json").stdout)["items"]
    assert any(e["reason"] == "TaintManagerEviction" and e["message"] == "Marking for deletion Pod default/goes"
               for e in events)
    assert "Terminating" in fleet.kubectl("get", "pod", "goes").stdout
    fleet.wait_node_ready(one, "Unknown")
    assert (UNREACHABLE, "NoExecute") not in taints(fleet, one.node)  # autonomous: its pod stays
    hold_for(lambda: terminating(fleet) == {"goes"}, 8, "only the pod past its toleration evicted")
    assert "goes" in two.running_pods()  # cut off from the cloud, the node runs it on

    fleet.start(two)  # back: the node stops the evicted pod and confirms it gone

    two.wait_gone("goes")
    wait_for(lambda: not taints(fleet, two.node), 10, "the taints gone at the controller's next pass")
    assert {"stays", "defaulted"} <= two.running_pods()
    assert not terminating(fleet)
