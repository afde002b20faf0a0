"""The Deployment controller on a real store with a fake clock; the ReplicaSet controller's part (pods and RS status)
is played by ``settle``, which makes ``ready`` of each ReplicaSet's replicas available."""
import datetime as dt

import pytest

from edgeworkers.cloud import workloads
from edgeworkers.cloud.deployment import (
    REVISION,
    DeploymentController,
    default_deployment,
    surge_and_unavailable,
    validate_deployment,
)
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s import printers
from tests.unit.clock import Clock

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
KEY = ("default", "web")


def deployment(replicas=3, image="busybox", strategy=None, **spec):
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}
    if strategy is not None:
        obj["spec"]["strategy"] = strategy
    return default_deployment(obj)


@pytest.fixture
def world(tmp_path):
    clock = Clock(T0)
    store = Store(tmp_path / "objects.db", clock=clock)
    hub = Hub(store)
    yield store, hub, clock, DeploymentController(store, hub, clock)
    store.close()


def replica_sets(store):
    return sorted(store.list("replicasets", "default"), key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))


def settle(store, hub, ready=None):
    """Play the ReplicaSet controller: each RS's replicas exist, ``ready`` of them (all when None) available."""
    for rs in store.list("replicasets", "default"):
        want = rs["spec"]["replicas"]
        up = want if ready is None else min(ready, want)
        rs = workloads.copy(rs)
        rs["status"] = {"replicas": want, "readyReplicas": up, "availableReplicas": up,
                        "observedGeneration": rs["metadata"]["generation"]}
        workloads.update(store, hub, "replicasets", rs)


def rolled_out(world, obj):
    """Create ``obj`` and let its first rollout complete."""
    store, hub, clock, controller = world
    workloads.create(store, hub, "deployments", obj)
    controller.sync(KEY)
    settle(store, hub)
    controller.sync(KEY)


def set_image(store, hub, image):
    d = workloads.copy(store.get("deployments", *KEY))
    d["spec"]["template"]["spec"]["containers"][0]["image"] = image
    workloads.update(store, hub, "deployments", d)


def condition(store, kind):
    return next(c for c in store.get("deployments", *KEY)["status"]["conditions"] if c["type"] == kind)


def test_defaults_and_fenceposts():
    d = deployment(replicas=10)
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                                "maxSurge": "25%"}}
    assert (d["spec"]["revisionHistoryLimit"], d["spec"]["progressDeadlineSeconds"]) == (10, 600)
    assert d["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert surge_and_unavailable(d) == (3, 2)  # surge rounded up, unavailable down
    zero = deployment(replicas=1, strategy={"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}})
    assert surge_and_unavailable(zero) == (0, 1)


def test_validation():
    assert validate_deployment(deployment(), None) == []
    bad = deployment()
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "Bad_Name"
    fields = {e.field for e in validate_deployment(bad, deployment())}
    assert {"spec.template.metadata.labels", "spec.selector", "spec.template.spec.containers[0].name"} <= fields
    none = deployment()
    del none["spec"]["selector"]
    assert [e.type for e in validate_deployment(none, None)] == ["FieldValueRequired"]
    pct = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": 0}})
    assert [e.field for e in validate_deployment(pct, None)] == ["spec.strategy.rollingUpdate.maxSurge"]


def test_first_rollout_creates_a_hashed_replica_set_and_completes(world):
    store, hub, clock, controller = world
    workloads.create(store, hub, "deployments", deployment())
    controller.sync(KEY)
    [rs] = replica_sets(store)
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
    assert rs["spec"]["replicas"] == 3 and rs["metadata"]["annotations"][REVISION] == "1"
    assert condition(store, "Progressing")["reason"] == "NewReplicaSetCreated"
    assert condition(store, "Available")["status"] == "False"
    events = [e["message"] for e in store.list("events", "default")]
    assert events == [f"Scaled up replica set web-{pod_hash} from 0 to 3"]
    settle(store, hub)
    controller.sync(KEY)
    status = store.get("deployments", *KEY)["status"]
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} == dict(
        replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3)
    assert "unavailableReplicas" not in status
    assert condition(store, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert condition(store, "Available")["reason"] == "MinimumReplicasAvailable"
    assert store.get("deployments", *KEY)["metadata"]["annotations"][REVISION] == "1"


@pytest.mark.parametrize("surge, unavailable", [(1, 0), (0, 1), ("25%", "25%"), (2, 2)])
def test_rolling_update_keeps_its_bounds_at_every_step(world, surge, unavailable):
    store, hub, clock, controller = world
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    rolled_out(world, deployment(replicas=4, strategy=rolling))
    set_image(store, hub, "busybox:1.36")
    max_surge, max_unavailable = surge_and_unavailable(store.get("deployments", *KEY))
    for _ in range(20):
        controller.sync(KEY)
        sets = replica_sets(store)
        assert sum(rs["spec"]["replicas"] for rs in sets) <= 4 + max_surge
        # what is scheduled to exist and was available stays at or above replicas - maxUnavailable
        assert sum(min(rs["spec"]["replicas"], rs["status"].get("availableReplicas", 0)) for rs in sets) >= (
            4 - max_unavailable)
        settle(store, hub)
        if [rs["spec"]["replicas"] for rs in replica_sets(store)] == [0, 4]:
            break
    controller.sync(KEY)
    old, new = replica_sets(store)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)
    assert new["metadata"]["annotations"][REVISION] == "2"
    assert store.get("deployments", *KEY)["metadata"]["annotations"][REVISION] == "2"
    assert condition(store, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_recreate_waits_for_old_pods_to_go(world):
    store, hub, clock, controller = world
    workloads.create(store, hub, "deployments", deployment(strategy={"type": "Recreate"}))
    controller.sync(KEY)
    settle(store, hub)
    [old] = replica_sets(store)
    workloads.create_pod(store, hub, workloads.pod_from_template(
        "replicasets", old, old["spec"]["template"], "web-"))
    set_image(store, hub, "busybox:1.36")
    controller.sync(KEY)
    old, new = replica_sets(store)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 0)  # an old pod still runs
    for pod in store.list("pods", "default"):
        workloads.delete(store, hub, "pods", pod)
    controller.sync(KEY)
    assert [rs["spec"]["replicas"] for rs in replica_sets(store)] == [0, 3]


def test_rollback_to_an_old_template_reuses_its_replica_set_with_a_new_revision(world):
    store, hub, clock, controller = world
    workloads.create(store, hub, "deployments", deployment(replicas=1))
    for image in ("busybox:1.36", "busybox"):
        controller.sync(KEY)
        settle(store, hub)
        controller.sync(KEY)
        settle(store, hub)
        controller.sync(KEY)
        set_image(store, hub, image)
    for _ in range(4):
        controller.sync(KEY)
        settle(store, hub)
    sets = replica_sets(store)
    assert len(sets) == 2
    assert [rs["metadata"]["annotations"][REVISION] for rs in sets] == ["2", "3"]
    assert sets[-1]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert sets[-1]["spec"]["replicas"] == 1


def test_history_beyond_the_limit_is_deleted(world):
    store, hub, clock, controller = world
    workloads.create(store, hub, "deployments", deployment(replicas=1, revisionHistoryLimit=1))
    for image in ("a", "b", "c"):
        for _ in range(4):
            controller.sync(KEY)
            settle(store, hub)
        set_image(store, hub, f"busybox:{image}")
    for _ in range(4):
        controller.sync(KEY)
        settle(store, hub)
    sets = replica_sets(store)
    assert [rs["metadata"]["annotations"][REVISION] for rs in sets] == ["3", "4"]


def test_paused_deployment_does_not_roll_but_scales(world):
    store, hub, clock, controller = world
    rolled_out(world, deployment())
    d = workloads.copy(store.get("deployments", *KEY))
    d["spec"]["paused"] = True
    d["spec"]["replicas"] = 5
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.36"
    workloads.update(store, hub, "deployments", d)
    controller.sync(KEY)
    [rs] = replica_sets(store)
    assert rs["spec"]["replicas"] == 5
    progressing = condition(store, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")
    d = workloads.copy(store.get("deployments", *KEY))
    d["spec"]["paused"] = False
    workloads.update(store, hub, "deployments", d)
    controller.sync(KEY)
    assert len(replica_sets(store)) == 2


def test_progress_deadline_exceeded(world):
    store, hub, clock, controller = world
    workloads.create(store, hub, "deployments", deployment(progressDeadlineSeconds=60))
    assert controller.sync(KEY) == pytest.approx(61)
    settle(store, hub, ready=1)
    clock.advance(30)
    controller.sync(KEY)
    assert condition(store, "Progressing")["reason"] == "ReplicaSetUpdated"
    clock.advance(61)
    assert controller.sync(KEY) is None
    progressing = condition(store, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"].endswith("has timed out progressing.")


def test_replicas_on_an_unreachable_node_are_counted_not_replaced(world):
    """Offline semantics: not-ready pods (their node Unknown) stay counted; nothing is added for them."""
    store, hub, clock, controller = world
    rolled_out(world, deployment())
    settle(store, hub, ready=1)  # two pods' node went silent: their pods turned Ready=False
    controller.sync(KEY)
    [rs] = replica_sets(store)
    assert rs["spec"]["replicas"] == 3
    status = store.get("deployments", *KEY)["status"]
    assert (status["availableReplicas"], status["unavailableReplicas"]) == (1, 2)
    assert condition(store, "Available")["reason"] == "MinimumReplicasUnavailable"


def test_scaling_mid_rollout_is_proportional(world):
    store, hub, clock, controller = world
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 0}}
    rolled_out(world, deployment(replicas=6, strategy=rolling))
    set_image(store, hub, "busybox:1.36")
    controller.sync(KEY)  # new RS to 3 (surge), none available yet
    assert [rs["spec"]["replicas"] for rs in replica_sets(store)] == [6, 3]
    d = workloads.copy(store.get("deployments", *KEY))
    d["spec"]["replicas"] = 12
    workloads.update(store, hub, "deployments", d)
    controller.sync(KEY)
    old, new = (rs["spec"]["replicas"] for rs in replica_sets(store))
    assert old + new == 15 and old == 10 and new == 5


def test_printer_columns(world):
    store, hub, clock, controller = world
    rolled_out(world, deployment())
    table = printers.to_table("deployments", [store.get("deployments", *KEY)], "1", T0 + dt.timedelta(minutes=5))
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert table["rows"][0]["cells"] == ["web", "3/3", 3, 3, "5m", "c", "busybox", "app=web"]


def test_an_old_pod_deleted_wakes_its_deployment(world):
    store, hub, clock, controller = world
    rolled_out(world, deployment(strategy={"type": "Recreate"}))
    [rs] = replica_sets(store)
    pod = workloads.create_pod(store, hub, workloads.pod_from_template("replicasets", rs, rs["spec"]["template"], "w-"))
    deleted = store.delete("pods", "default", pod["metadata"]["name"])
    assert list(controller.keys_for(deleted)) == [KEY]
