"""The DaemonSet controller on a real store with several Node objects, the real binder and a fake clock; the nodes'
part (running a pod, reporting it Ready, confirming a deletion) is played by the test."""
import datetime as dt

import pytest

from edgeworkers.cloud.binder import Binder
from edgeworkers.cloud.daemonset import (
    HASH_LABEL,
    DaemonSetController,
    daemon_tolerations,
    default_daemonset,
    pin_to_node,
    should_run,
    target_node,
    validate_daemonset,
)
from edgeworkers.cloud.patch import strategic_merge
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.cloud.workloads import copy
from edgeworkers.k8s.printers import to_table
from edgeworkers.k8s.timefmt import format_time
from tests.unit.clock import Clock

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
UNREACHABLE_NOSCHEDULE = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}


def node(name, labels=None, taints=None, ready="True", unschedulable=False):
    spec = {**({"taints": taints} if taints else {}), **({"unschedulable": True} if unschedulable else {})}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def daemonset(name="agent", image="busybox:1", node_selector=None, tolerations=None, strategy=None, **spec):
    pod_spec = {"containers": [{"name": "agent", "image": image}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    body = {"metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
                     **({"updateStrategy": strategy} if strategy else {}), **spec}}
    return {**default_daemonset(body), "status": {}}


class Cluster:
    """A store, hub, clock, binder and DaemonSet controller; ``settle`` runs them until nothing changes."""

    def __init__(self, tmp_path):
        self.clock = Clock(T0)
        self.store = Store(tmp_path / "objects.db", clock=self.clock)
        self.hub = Hub(self.store)
        self.binder = Binder(self.store, self.hub, self.clock)
        self.controller = DaemonSetController(self.store, self.hub, self.clock)
        self.waits = []

    def add(self, resource, obj):
        self.hub.publish(self.store.create(resource, obj))

    def change(self, resource, name, edit, namespace=""):
        new = copy(self.store.get(resource, namespace, name))
        edit(new)
        self.hub.publish(self.store.update(resource, new))

    def settle(self, name="agent"):
        for _ in range(6):
            self.waits.append(self.controller.sync(("default", name)))
            self.binder.bind_pending()

    def pods(self, name="agent"):
        return [p for p in self.store.list("pods", "default") if p["metadata"]["name"].startswith(f"{name}-")]

    def live(self, name="agent"):
        return [p for p in self.pods(name) if not p["metadata"].get("deletionTimestamp")]

    def placement(self, name="agent"):
        return sorted(p["spec"].get("nodeName") or "" for p in self.live(name))

    def run(self, pod, ready=True, phase="Running"):
        """The pod's node reports it (Ready since now)."""
        def edit(p):
            p["status"] = {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": format_time(self.clock())}]}
        self.change("pods", pod["metadata"]["name"], edit, "default")

    def run_all(self, name="agent"):
        for pod in self.live(name):
            if (pod.get("status") or {}).get("phase") != "Running" and pod["spec"].get("nodeName"):
                self.run(pod)

    def confirm_deletions(self):
        """The nodes finish the graceful deletions (kubelet's final delete)."""
        for pod in self.store.list("pods"):
            if pod["metadata"].get("deletionTimestamp"):
                self.hub.publish(self.store.delete("pods", "default", pod["metadata"]["name"]))

    def status(self, name="agent"):
        return self.store.get("daemonsets", "default", name)["status"]

    def reasons(self):
        return sorted(e["reason"] for e in self.store.list("events", "default")
                      if e["involvedObject"]["kind"] == "DaemonSet")

    def update_template(self, name="agent", **changes):
        def edit(ds):
            ds["spec"] = {**ds["spec"], "template": {**ds["spec"]["template"], "spec": {
                **ds["spec"]["template"]["spec"],
                "containers": [{**ds["spec"]["template"]["spec"]["containers"][0], **changes}]}}}
            default_daemonset(ds)
        self.change("daemonsets", name, edit, "default")


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.store.close()


def test_one_pod_on_every_matching_node_pinned_by_node_affinity_and_bound_by_the_binder(cluster):
    for name, zone in (("edge-1", "a"), ("edge-2", "a"), ("edge-3", "b")):
        cluster.add("nodes", node(name, {"zone": zone}))
    cluster.add("daemonsets", daemonset(node_selector={"zone": "a"}))
    cluster.settle()
    pods = cluster.live()
    assert cluster.placement() == ["edge-1", "edge-2"]
    for pod in pods:
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms == {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]}]}
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        assert pod["metadata"]["labels"][HASH_LABEL]
        tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in tolerated
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
        unreachable = next(t for t in pod["spec"]["tolerations"] if t["key"] == "node.kubernetes.io/unreachable")
        assert "tolerationSeconds" not in unreachable  # for ever: never evicted for a silent node
    assert cluster.reasons() == ["SuccessfulCreate", "SuccessfulCreate"]
    status = cluster.status()
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberReady"],
            status["numberMisscheduled"], status["numberUnavailable"], status["updatedNumberScheduled"]) == \
        (2, 2, 0, 0, 2, 2)
    cluster.run_all()
    cluster.settle()
    status = cluster.status()
    assert (status["numberReady"], status["numberAvailable"], status.get("numberUnavailable", 0),
            status["observedGeneration"]) == (2, 2, 0, 1)


def test_nodes_that_join_relabel_or_leave(cluster):
    cluster.add("nodes", node("edge-1", {"agent": "yes"}))
    cluster.add("daemonsets", daemonset(node_selector={"agent": "yes"}))
    cluster.settle()
    assert cluster.placement() == ["edge-1"]
    cluster.add("nodes", node("edge-2", {"agent": "yes"}))  # joins later
    cluster.settle()
    assert cluster.placement() == ["edge-1", "edge-2"]
    cluster.change("nodes", "edge-1", lambda n: n["metadata"].update(labels={}))  # stops matching: loses its pod
    cluster.settle()
    assert cluster.placement() == ["edge-2"]
    cluster.confirm_deletions()
    cluster.change("nodes", "edge-1", lambda n: n["metadata"].update(labels={"agent": "yes"}))
    cluster.settle()
    assert cluster.placement() == ["edge-1", "edge-2"]
    cluster.hub.publish(cluster.store.delete("nodes", "", "edge-2"))  # gone: no longer desired or counted
    cluster.settle()
    assert cluster.status()["desiredNumberScheduled"] == 1


def test_a_node_event_wakes_only_the_daemonsets_whose_verdict_it_changes(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("daemonsets", daemonset())
    cluster.settle()
    cluster.controller._queue.clear()
    cluster.change("nodes", "edge-1", lambda n: n["status"].update(heartbeat="later"))
    assert list(cluster.controller._queue) == []
    cluster.change("nodes", "edge-1", lambda n: n["spec"].update(taints=[{"key": "x", "effect": "NoSchedule"}]))
    assert list(cluster.controller._queue) == [("default", "agent")]


def test_taints_and_tolerations(cluster):
    cluster.add("nodes", node("plain"))
    cluster.add("nodes", node("gpu", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}]))
    cluster.add("nodes", node("cordoned", unschedulable=True))
    cluster.add("nodes", node("pressed", taints=[{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]))
    cluster.add("daemonsets", daemonset())
    cluster.add("daemonsets", daemonset("gpu-agent", tolerations=[{"key": "gpu", "operator": "Exists"}]))
    cluster.settle()
    cluster.settle("gpu-agent")
    assert cluster.placement() == ["cordoned", "plain", "pressed"]  # the daemon tolerations: cordon and pressure
    assert cluster.placement("gpu-agent") == ["cordoned", "gpu", "plain", "pressed"]
    # a NoSchedule taint added later leaves the running pod (misscheduled); a NoExecute one removes it
    cluster.change("nodes", "plain", lambda n: n["spec"].update(taints=[{"key": "x", "effect": "NoSchedule"}]))
    cluster.settle()
    assert cluster.placement() == ["cordoned", "plain", "pressed"]
    assert (cluster.status()["desiredNumberScheduled"], cluster.status()["numberMisscheduled"]) == (2, 1)
    cluster.change("nodes", "plain", lambda n: n["spec"].update(taints=[{"key": "x", "effect": "NoExecute"}]))
    cluster.settle()
    assert cluster.placement() == ["cordoned", "pressed"]


def test_a_silent_node_keeps_its_pod_and_gets_no_second_one(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("nodes", node("edge-2"))
    cluster.add("daemonsets", daemonset())
    cluster.settle()
    cluster.run_all()
    before = {p["metadata"]["name"] for p in cluster.live()}

    def silent(n):  # what the node lifecycle controller writes
        n["status"] = {"conditions": [{"type": "Ready", "status": "Unknown"}]}
        n["spec"] = {"taints": [UNREACHABLE_NOSCHEDULE]}
    cluster.change("nodes", "edge-2", silent)
    on_silent = next(p for p in cluster.live() if p["spec"]["nodeName"] == "edge-2")
    cluster.run(on_silent, ready=False)  # its pods turn not ready
    for _ in range(3):
        cluster.clock.advance(60)
        cluster.settle()
    assert {p["metadata"]["name"] for p in cluster.pods()} == before  # nothing deleted, nothing added
    status = cluster.status()
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberMisscheduled"]) == \
        (1, 1, 1)
    cluster.add("daemonsets", daemonset("late"))  # made while the node is silent: none for it
    cluster.settle("late")
    assert cluster.placement("late") == ["edge-1"]


def test_a_failed_pod_is_deleted_and_made_again_with_back_off(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("daemonsets", daemonset())
    cluster.settle()
    first = cluster.live()[0]
    cluster.run(first, phase="Failed", ready=False)
    cluster.settle()
    assert cluster.store.get("pods", "default", first["metadata"]["name"])["metadata"].get("deletionTimestamp")
    cluster.confirm_deletions()
    cluster.settle()
    second = cluster.live()[0]
    assert second["metadata"]["name"] != first["metadata"]["name"]
    cluster.waits.clear()
    cluster.run(second, phase="Failed", ready=False)
    cluster.settle()  # within the 1 s back-off: kept, looked at again when it ends
    assert not cluster.store.get("pods", "default", second["metadata"]["name"])["metadata"].get("deletionTimestamp")
    assert 0 < min(w for w in cluster.waits if w is not None) <= 1.0
    cluster.clock.advance(1.5)
    cluster.settle()
    assert cluster.store.get("pods", "default", second["metadata"]["name"])["metadata"].get("deletionTimestamp")
    assert cluster.reasons().count("FailedDaemonPod") == 2


def _unavailable_nodes(cluster, nodes):
    ready = {p["spec"]["nodeName"] for p in cluster.live() if p.get("status", {}).get("phase") == "Running"}
    return len(set(nodes) - ready)


def test_rolling_update_keeps_at_most_max_unavailable_nodes_without_a_ready_pod(cluster):
    nodes = [f"edge-{i}" for i in range(5)]
    for name in nodes:
        cluster.add("nodes", node(name))
    cluster.add("daemonsets", daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}))
    cluster.settle()
    cluster.run_all()
    cluster.settle()
    cluster.update_template(image="busybox:2")
    new_hash = None
    for _ in range(10):
        cluster.settle()
        assert _unavailable_nodes(cluster, nodes) <= 2
        cluster.confirm_deletions()
        cluster.settle()
        assert _unavailable_nodes(cluster, nodes) <= 2
        cluster.run_all()
        new_hash = cluster.store.get("daemonsets", "default", "agent")
        if all(p["spec"]["containers"][0]["image"] == "busybox:2" for p in cluster.pods()) and \
                len(cluster.pods()) == 5:
            break
    cluster.settle()
    assert sorted(p["spec"]["nodeName"] for p in cluster.pods()) == nodes
    assert {p["spec"]["containers"][0]["image"] for p in cluster.pods()} == {"busybox:2"}
    status = cluster.status()
    assert (status["updatedNumberScheduled"], status["numberAvailable"], status["observedGeneration"]) == (5, 5, 2)
    assert new_hash["metadata"]["generation"] == 2


def test_rolling_update_with_surge_starts_the_new_pod_before_the_old_one_goes(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("daemonsets", daemonset(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}))
    cluster.settle()
    cluster.run_all()
    old = cluster.live()[0]
    cluster.update_template(image="busybox:2")
    cluster.settle()
    assert len(cluster.live()) == 2  # the new one beside the old one
    assert not cluster.store.get("pods", "default", old["metadata"]["name"])["metadata"].get("deletionTimestamp")
    cluster.run_all()  # the new one is ready: the old one goes
    cluster.settle()
    assert [p["spec"]["containers"][0]["image"] for p in cluster.live()] == ["busybox:2"]


def test_on_delete_changes_a_pod_only_when_it_is_deleted(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("nodes", node("edge-2"))
    cluster.add("daemonsets", daemonset(strategy={"type": "OnDelete"}))
    cluster.settle()
    cluster.run_all()
    cluster.update_template(image="busybox:2")
    cluster.settle()
    assert {p["spec"]["containers"][0]["image"] for p in cluster.live()} == {"busybox:1"}
    assert cluster.status().get("updatedNumberScheduled", 0) == 0
    victim = next(p for p in cluster.live() if p["spec"]["nodeName"] == "edge-1")
    cluster.hub.publish(cluster.store.delete("pods", "default", victim["metadata"]["name"]))
    cluster.settle()
    images = {p["spec"]["nodeName"]: p["spec"]["containers"][0]["image"] for p in cluster.live()}
    assert images == {"edge-1": "busybox:2", "edge-2": "busybox:1"}
    assert cluster.status()["updatedNumberScheduled"] == 1


def _revisions(cluster):
    return sorted((r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0]["image"])
                  for r in cluster.store.list("controllerrevisions", "default"))


def test_history_and_undo_as_kubectl_sends_it(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("daemonsets", daemonset(strategy={"type": "OnDelete"}))
    cluster.settle()
    first_hash = cluster.live()[0]["metadata"]["labels"][HASH_LABEL]
    cluster.update_template(image="busybox:2")
    cluster.settle()
    assert _revisions(cluster) == [(1, "busybox:1"), (2, "busybox:2")]
    revision = min(cluster.store.list("controllerrevisions", "default"), key=lambda r: r["revision"])
    assert revision["metadata"]["name"] == f"agent-{first_hash}"
    assert revision["metadata"]["labels"] == {"app": "agent", HASH_LABEL: first_hash}
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    # kubectl rollout undo: a strategic merge patch of the DaemonSet with the previous revision's data
    ds = cluster.store.get("daemonsets", "default", "agent")
    undone = default_daemonset(strategic_merge(ds, revision["data"], "DaemonSet"))
    cluster.hub.publish(cluster.store.update("daemonsets", undone))
    cluster.settle()
    assert _revisions(cluster) == [(2, "busybox:2"), (3, "busybox:1")]  # renumbered, not duplicated
    assert cluster.live()[0]["metadata"]["labels"][HASH_LABEL] == first_hash
    assert cluster.status()["updatedNumberScheduled"] == 1


def test_old_revisions_beyond_the_limit_go_unless_a_pod_runs_them(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("daemonsets", daemonset(strategy={"type": "OnDelete"}, revisionHistoryLimit=1))
    cluster.settle()
    for image in ("busybox:2", "busybox:3", "busybox:4"):
        cluster.update_template(image=image)
        cluster.settle()
    # the pod still runs revision 1 (OnDelete): it is the one old revision kept, beside the current one
    assert _revisions(cluster) == [(1, "busybox:1"), (4, "busybox:4")]


def test_deleting_pods_and_unbound_pods_for_vanished_nodes(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("daemonsets", daemonset())
    cluster.controller.sync(("default", "agent"))  # made, not yet bound
    cluster.hub.publish(cluster.store.delete("nodes", "", "edge-1"))
    cluster.controller.sync(("default", "agent"))
    assert cluster.pods() == []


# -- pure parts ----------------------------------------------------------------------------------------------------

def test_daemon_tolerations_replace_equal_ones_and_add_network_for_host_network():
    spec = {"hostNetwork": True, "tolerations": [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
        {"key": "mine", "operator": "Exists"}]}
    tolerations = daemon_tolerations(spec)
    assert tolerations[0] == {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert tolerations[1] == {"key": "mine", "operator": "Exists"}
    assert {t["key"] for t in tolerations[2:]} == {
        "node.kubernetes.io/not-ready", "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable", "node.kubernetes.io/network-unavailable"}


def test_pin_to_node_replaces_required_terms_and_keeps_the_rest():
    spec = {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": []}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]}, "podAffinity": {}}}
    pinned = pin_to_node(spec, "edge-9")
    assert target_node({"spec": pinned}) == "edge-9"
    assert pinned["affinity"]["podAffinity"] == {}
    assert pinned["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [{"weight": 1}]
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"] == [{"matchExpressions": []}]  # the template is not changed


@pytest.mark.parametrize("taints, want", [
    ([], (True, True)),
    ([UNREACHABLE_NOSCHEDULE], (False, True)),
    ([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}], (True, True)),
    ([{"key": "x", "effect": "NoSchedule"}], (False, True)),
    ([{"key": "x", "effect": "NoExecute"}], (False, False)),
    ([{"key": "x", "effect": "PreferNoSchedule"}], (True, True)),
])
def test_should_run(taints, want):
    assert should_run(daemonset(), node("n", taints=taints)) == want


def test_a_template_node_name_limits_it_to_that_node():
    ds = daemonset()
    ds["spec"]["template"]["spec"]["nodeName"] = "only"
    assert should_run(ds, node("other")) == (False, False)
    assert should_run(ds, node("only")) == (True, True)


def test_defaults():
    ds = daemonset()
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    pod_spec = ds["spec"]["template"]["spec"]
    assert (pod_spec["restartPolicy"], pod_spec["dnsPolicy"]) == ("Always", "ClusterFirst")
    assert "apiVersion" not in ds["spec"]["template"]
    on_delete = daemonset(strategy={"type": "OnDelete"})
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


def _messages(obj, old=None):
    return [e.message() for e in validate_daemonset(obj, old)]


def test_a_valid_daemonset_has_no_errors():
    assert _messages(daemonset()) == []


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["spec"].pop("selector"), "spec.selector: Required value"),
    (lambda d: d["spec"].update(selector={}), "spec.selector: Invalid value: {}: empty selector is invalid for "
                                              "daemonset"),
    (lambda d: d["spec"]["selector"].update(matchLabels={"app": "other"}),
     'spec.template.metadata.labels: Invalid value: {"app":"agent"}: `selector` does not match template `labels`'),
    (lambda d: d["spec"]["template"]["spec"].update(restartPolicy="Never"),
     'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'),
    (lambda d: d["spec"]["template"]["spec"].update(containers=[]),
     "spec.template.spec.containers: Required value"),
    (lambda d: d["spec"]["template"]["spec"].update(activeDeadlineSeconds=5),
     "spec.template.spec.activeDeadlineSeconds: Invalid value: 5: activeDeadlineSeconds in DaemonSet is not "
     "Supported"),
    (lambda d: d["spec"]["updateStrategy"].update(type="Recreate"),
     'spec.updateStrategy: Unsupported value: {"type":"Recreate","rollingUpdate":{"maxUnavailable":1,'
     '"maxSurge":0}}: supported values: "RollingUpdate", "OnDelete"'),
    (lambda d: d["spec"]["updateStrategy"]["rollingUpdate"].update(maxUnavailable=0),
     "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"),
    (lambda d: d["spec"]["updateStrategy"]["rollingUpdate"].update(maxSurge="10%"),
     'spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "10%": may not be set when maxUnavailable is '
     'non-zero'),
    (lambda d: d["spec"]["updateStrategy"]["rollingUpdate"].update(maxUnavailable="x"),
     "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"x\": a valid percent string must be a "
     "numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
    (lambda d: d["spec"]["updateStrategy"]["rollingUpdate"].update(maxUnavailable="150%"),
     'spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%'),
    (lambda d: d["spec"].update(revisionHistoryLimit=-1),
     "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"),
])
def test_invalid_daemonsets(edit, message):
    ds = daemonset()
    edit(ds)
    assert message in _messages(ds)


def test_the_selector_is_immutable():
    old = daemonset()
    new = daemonset()
    new["spec"]["selector"]["matchExpressions"] = [{"key": "app", "operator": "Exists"}]
    assert _messages(new, old) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"agent"},"matchExpressions":[{"key":"app",'
        '"operator":"Exists"}]}: field is immutable']
    assert _messages(daemonset(image="other"), old) == []


def test_kubectl_get_ds_columns():
    ds = daemonset(node_selector={"zone": "a", "arch": "arm64"})
    ds["metadata"]["creationTimestamp"] = format_time(T0)
    ds["status"] = {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                    "updatedNumberScheduled": 1, "numberAvailable": 2}
    table = to_table("daemonsets", [ds], "1", T0 + dt.timedelta(minutes=5))
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age", "Containers",
        "Images", "Selector"]
    assert table["rows"][0]["cells"] == ["agent", 3, 3, 2, 1, 2, "arch=arm64,zone=a", "5m", "agent", "busybox:1",
                                         "app=agent"]


def test_kubectl_get_controllerrevisions_columns(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("daemonsets", daemonset())
    cluster.settle()
    (revision,) = cluster.store.list("controllerrevisions", "default")
    table = to_table("controllerrevisions", [revision], "1", T0 + dt.timedelta(seconds=30))
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Controller", "Revision", "Age"]
    assert table["rows"][0]["cells"] == [revision["metadata"]["name"], "daemonset.apps/agent", 1, "30s"]


def test_orphans_are_adopted_and_a_relabelled_pod_is_released(cluster):
    cluster.add("nodes", node("edge-1"))
    cluster.add("nodes", node("edge-2"))
    orphan = {"metadata": {"name": "agent-orphan", "namespace": "default", "labels": {"app": "agent"}},
              "spec": {"nodeName": "edge-1", "containers": [{"name": "agent", "image": "busybox:0"}]}}
    mirror = {"metadata": {"name": "agent-static", "namespace": "default", "labels": {"app": "agent"},
                           "annotations": {"kubernetes.io/config.mirror": "x"}},
              "spec": {"nodeName": "edge-2", "containers": [{"name": "agent", "image": "busybox:0"}]}}
    cluster.add("pods", orphan)
    cluster.add("pods", mirror)
    cluster.add("daemonsets", daemonset(strategy={"type": "OnDelete"}))
    cluster.settle()
    adopted = cluster.store.get("pods", "default", "agent-orphan")
    assert adopted["metadata"]["ownerReferences"][0]["name"] == "agent"
    assert "ownerReferences" not in cluster.store.get("pods", "default", "agent-static")["metadata"]
    assert cluster.placement() == ["edge-1", "edge-2", "edge-2"]  # the orphan kept (OnDelete); edge-2 got its own
    cluster.change("pods", "agent-orphan", lambda p: p["metadata"].update(labels={"app": "debug"}), "default")
    cluster.settle()
    released = cluster.store.get("pods", "default", "agent-orphan")
    assert "ownerReferences" not in released["metadata"]
    owned = [p for p in cluster.live() if p["metadata"].get("ownerReferences")]
    assert sorted(p["spec"]["nodeName"] for p in owned) == ["edge-1", "edge-2"]


def test_an_orphan_pod_wakes_the_daemonsets_that_match_it(cluster):
    cluster.add("daemonsets", daemonset())
    cluster.add("daemonsets", daemonset("other"))
    cluster.controller._queue.clear()
    cluster.add("pods", {"metadata": {"name": "stray", "namespace": "default", "labels": {"app": "agent"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert list(cluster.controller._queue) == [("default", "agent")]
