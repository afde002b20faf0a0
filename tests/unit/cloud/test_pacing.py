"""The controllers' shared pace (``TokenBucket``, kube-controller-manager's client QPS and burst) with a fake clock: a
burst of pods made ``burst`` at once then at ``qps``, one bucket for every controller, running out of tokens no error."""
import asyncio
import datetime as dt

import pytest

from edgeworkers.cloud import workloads
from edgeworkers.cloud.controller import TokenBucket
from edgeworkers.cloud.daemonset import DaemonSetController
from edgeworkers.cloud.job import JobController, default_job
from edgeworkers.cloud.replicaset import ReplicaSetController, default_replica_set
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub
from tests.unit.clock import Clock
from tests.unit.cloud.test_daemonset import daemonset, node

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
RS_KEY, JOB_KEY = ("default", "web"), ("default", "work")
TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest.fixture
def cluster(tmp_path):
    clock = Clock(T0)
    store = Store(tmp_path / "objects.db", clock=clock)
    yield store, Hub(store), clock, TokenBucket(20.0, 30, clock)
    store.close()


def new_rs(store, replicas):
    store.create("replicasets", default_replica_set({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, **TEMPLATE}}}))


def new_job(store, parallelism):
    job = default_job({"metadata": {"name": "work", "namespace": "default"},
                       "spec": {"parallelism": parallelism, "completions": parallelism,
                                "template": {"spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}}}})
    store.create("jobs", {**job, "status": {}})


def owned(store, resource, key):
    owner = store.get(resource, *key)
    return [p for p in store.list("pods", "default") if workloads.controlled_by(p, owner)]


def reasons(store):
    return {e["reason"] for e in store.list("events", "default")}


def test_the_bucket_gives_its_burst_then_qps_and_books_in_turn():
    clock = Clock(T0)
    bucket = TokenBucket(20.0, 30, clock)
    assert bucket.take(("a", RS_KEY), 100) == (30, 1.5)  # 30 at once; the next 30 booked, paid for in 1.5 s
    assert bucket.take(("b", RS_KEY), 10) == (0, 2.0)  # booked behind a's
    clock.advance(1.0)
    assert bucket.take(("a", RS_KEY), 70) == (0, 0.5)  # not yet due
    clock.advance(0.5)
    assert bucket.take(("a", RS_KEY), 70) == (30, 2.0)  # its 30, and 30 more booked behind b's 10
    clock.advance(0.5)
    assert bucket.take(("b", RS_KEY), 10) == (10, None)
    assert bucket.take(("c", RS_KEY), 1) == (0, 1.55)  # behind a's 30


def test_a_booking_left_long_after_it_was_due_is_dropped():
    clock = Clock(T0)
    bucket = TokenBucket(20.0, 30, clock)
    assert bucket.take(("a", RS_KEY), 60) == (30, 1.5)
    clock.advance(1.5 + TokenBucket.EXPIRY_S + 1)
    assert bucket.take(("a", RS_KEY), 60) == (30, 1.5)  # the full bucket, not its old booking besides


def test_a_burst_of_replicas_is_made_30_at_once_then_at_20_a_second(cluster):
    store, hub, clock, bucket = cluster
    controller = ReplicaSetController(store, hub, clock, limiter=bucket)
    new_rs(store, 100)
    made = []
    for _ in range(8):
        again = controller.sync(RS_KEY)
        made.append(len(owned(store, "replicasets", RS_KEY)))
        if again is None:
            break
        assert controller.sync(RS_KEY) == pytest.approx(again)  # early: nothing more, the same due time
        clock.advance(again)
    assert made == [30, 60, 90, 100]  # at 0, 1.5, 3.0 and 3.5 s: 30 and then 20 a second
    assert clock() - T0 == dt.timedelta(seconds=3.5)
    assert controller.sync(RS_KEY) is None  # the status counts the pods found when the sync began, as kube's
    assert store.get("replicasets", *RS_KEY)["status"]["replicas"] == 100
    new = store.get("replicasets", *RS_KEY)
    store.update("replicasets", {**new, "spec": {**new["spec"], "replicas": 20}})
    clock.advance(1.0)  # 20 tokens: the 80 extra pods go at the same pace
    assert controller.sync(RS_KEY) == pytest.approx(1.5)
    assert len([p for p in owned(store, "replicasets", RS_KEY) if workloads.is_active(p)]) == 80


def test_two_controllers_share_the_bucket(cluster):
    store, hub, clock, bucket = cluster
    replica_sets = ReplicaSetController(store, hub, clock, limiter=bucket)
    jobs = JobController(store, hub, clock, limiter=bucket)
    new_rs(store, 20)
    new_job(store, 20)
    assert replica_sets.sync(RS_KEY) is None  # 20 of the 30
    assert jobs.sync(JOB_KEY) == pytest.approx(0.5)  # the other 10; 10 more booked
    assert (len(owned(store, "replicasets", RS_KEY)), len(owned(store, "jobs", JOB_KEY))) == (20, 10)
    clock.advance(0.5)
    assert jobs.sync(JOB_KEY) is None
    assert len(owned(store, "jobs", JOB_KEY)) == 20


def test_a_daemonset_on_40_nodes_makes_30_pods_then_the_rest_when_its_tokens_are_due(cluster):
    store, hub, clock, bucket = cluster
    controller = DaemonSetController(store, hub, clock, limiter=bucket)
    for i in range(40):
        store.create("nodes", node(f"edge-{i:02}"))
    store.create("daemonsets", daemonset())
    assert controller.sync(("default", "agent")) == pytest.approx(0.5)
    assert len(owned(store, "daemonsets", ("default", "agent"))) == 30
    assert controller.sync(("default", "agent")) == pytest.approx(0.5)  # early: nothing more
    clock.advance(0.5)
    assert controller.sync(("default", "agent")) is None
    pods = owned(store, "daemonsets", ("default", "agent"))
    assert len({p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchFields"][0]["values"][0] for p in pods}) == len(pods) == 40
    assert reasons(store) == {"SuccessfulCreate"}


def test_running_out_of_tokens_is_no_failure(cluster):
    store, hub, clock, bucket = cluster
    controller = ReplicaSetController(store, hub, clock, limiter=bucket)
    new_rs(store, 40)

    async def process():
        controller.process(RS_KEY)
        return controller._timers[RS_KEY].when() - asyncio.get_running_loop().time()

    assert asyncio.run(process()) == pytest.approx(0.5, abs=0.05)  # looked at again when its tokens are due
    assert controller._failures == {}
    assert reasons(store) == {"SuccessfulCreate"}  # no FailedCreate
    assert "conditions" not in store.get("replicasets", *RS_KEY)["status"]  # no ReplicaFailure
