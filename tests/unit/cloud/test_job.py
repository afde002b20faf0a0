"""The Job controller on a real store with a fake clock; pods' phases set here as their nodes would report them."""
import datetime as dt

import pytest

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.job import (
    CONTROLLER_UID,
    JobController,
    default_job,
    pod_backoff_s,
    validate_job,
)
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s.printers import to_table
from edgeworkers.k8s.timefmt import format_time
from tests.unit.clock import Clock

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
KEY = ("default", "work")


@pytest.fixture
def world(tmp_path):
    clock = Clock(T0)
    store = Store(tmp_path / "objects.db", clock=clock)
    hub = Hub(store)
    return store, JobController(store, hub, clock), clock


def new_job(store, restart="Never", **spec):
    job = default_job({"metadata": {"name": "work", "namespace": "default"},
                       "spec": {"template": {"spec": {"restartPolicy": restart,
                                                      "containers": [{"name": "c", "image": "busybox"}]}},
                                **spec}})
    assert validate_job(job, None) == []
    job["status"] = {}
    return store.create("jobs", job).object


def job(store):
    return store.get("jobs", *KEY)


def pods(store, active_only=True):
    return [p for p in store.list("pods", "default")
            if not active_only or (p["status"].get("phase") not in ("Succeeded", "Failed")
                                   and not p["metadata"].get("deletionTimestamp"))]


def report(store, clock, pod, phase, restarts=0):
    """Set a pod's phase as its node reports it (a terminated container's finishedAt: now)."""
    state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": format_time(clock())}} \
        if phase in ("Succeeded", "Failed") else {"running": {}}
    pod = store.get("pods", "default", pod["metadata"]["name"])
    pod["status"] = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts, "state": state}]}
    store.update("pods", pod)


def conditions(store):
    return [(c["type"], c.get("reason")) for c in job(store)["status"].get("conditions", [])]


def reasons(store):
    return [e["reason"] for e in store.list("events", "default")]


def test_defaults_generate_the_selector_and_template_labels():
    job = default_job({"metadata": {"name": "work"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
    spec, uid = job["spec"], job["metadata"]["uid"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"], spec["completionMode"]) == \
        (1, 1, 6, "NonIndexed")
    assert spec["selector"] == {"matchLabels": {CONTROLLER_UID: uid}}
    assert spec["template"]["metadata"]["labels"] == {
        CONTROLLER_UID: uid, "batch.kubernetes.io/job-name": "work", "controller-uid": uid, "job-name": "work"}
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30  # the pod defaults
    assert default_job({"spec": {"parallelism": 3, "template": {}}})["spec"].get("completions") is None


def test_validation_errors_name_their_fields():
    job = default_job({"metadata": {"name": "work"}, "spec": {"backoffLimit": -1, "template": {"spec": {
        "restartPolicy": "Always", "containers": [{"name": "c"}]}}}})
    fields = {e.field for e in validate_job(job, None)}
    assert {"spec.backoffLimit", "spec.template.spec.restartPolicy", "spec.template.spec.containers[0].image"} <= fields
    good = default_job({"metadata": {"name": "work"}, "spec": {"template": {"spec": {
        "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}})
    changed = default_job(good)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "alpine"
    assert [e.field for e in validate_job(changed, good)] == ["spec.template"]
    manual = {**good, "spec": {**good["spec"], "selector": {"matchLabels": {"app": "other"}}}}
    assert "spec.template.metadata.labels" in {e.field for e in validate_job(manual, None)}


def test_pod_backoff_doubles_from_10s_to_6min():
    assert [pod_backoff_s(n) for n in (0, 1, 2, 3, 6, 7, 20)] == [0, 10, 20, 40, 320, 360, 360]


def test_completions_with_parallelism_complete(world):
    store, ctrl, clock = world
    new_job(store, completions=5, parallelism=2)
    ctrl.sync(KEY)
    first = pods(store)
    assert len(first) == 2
    labels = first[0]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "work" and labels["job-name"] == "work"
    assert job(store)["status"]["startTime"] == format_time(T0) and job(store)["status"]["active"] == 2
    while len([p for p in pods(store, False) if p["status"]["phase"] == "Succeeded"]) < 5:
        assert len(pods(store)) <= 2
        clock.advance(1)
        report(store, clock, pods(store)[0], "Succeeded")
        ctrl.sync(KEY)
    assert conditions(store) == [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]
    status = job(store)["status"]
    assert status["succeeded"] == 5 and "active" not in status and status["completionTime"] == format_time(clock())
    assert reasons(store).count("SuccessfulCreate") == 5 and "Completed" in reasons(store)
    assert to_table("jobs", [job(store)], "1", clock())["rows"][0]["cells"][1:4] == ["Complete", "5/5", "5s"]


def test_failures_back_off_then_stop_at_backoff_limit(world):
    store, ctrl, clock = world
    new_job(store, backoffLimit=1)
    ctrl.sync(KEY)
    report(store, clock, pods(store)[0], "Failed")
    assert ctrl.sync(KEY) == pytest.approx(10)  # the first retry waits 10 s
    assert pods(store) == [] and job(store)["status"]["failed"] == 1
    clock.advance(10)
    ctrl.sync(KEY)
    assert len(pods(store)) == 1
    report(store, clock, pods(store)[0], "Failed")
    ctrl.sync(KEY)
    assert conditions(store) == [("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
    assert job(store)["status"]["failed"] == 2 and "BackoffLimitExceeded" in reasons(store)
    assert "completionTime" not in job(store)["status"]


def test_on_failure_restarts_count_toward_the_limit_and_active_pods_go(world):
    store, ctrl, clock = world
    new_job(store, restart="OnFailure", backoffLimit=2)
    ctrl.sync(KEY)
    pod = pods(store)[0]
    pod["spec"]["nodeName"] = "edge-1"  # bound: deleted gracefully, so it terminates a while
    store.update("pods", pod)
    report(store, clock, pod, "Running", restarts=1)
    ctrl.sync(KEY)
    assert conditions(store) == []
    report(store, clock, pod, "Running", restarts=2)
    ctrl.sync(KEY)
    assert conditions(store) == [("FailureTarget", "BackoffLimitExceeded")]
    assert job(store)["status"]["terminating"] == 1
    store.delete("pods", "default", pod["metadata"]["name"])  # the node killed it and deleted it
    ctrl.sync(KEY)
    assert conditions(store)[-1] == ("Failed", "BackoffLimitExceeded")


def test_active_deadline(world):
    store, ctrl, clock = world
    new_job(store, activeDeadlineSeconds=30)
    assert ctrl.sync(KEY) == pytest.approx(30)
    clock.advance(30)
    ctrl.sync(KEY)
    assert conditions(store) == [("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded")]
    assert pods(store) == [] and "DeadlineExceeded" in reasons(store)


def test_ttl_after_finished_deletes_the_job_and_its_pods(world):
    store, ctrl, clock = world
    new_job(store, ttlSecondsAfterFinished=60)
    ctrl.sync(KEY)
    report(store, clock, pods(store)[0], "Succeeded")
    ctrl.sync(KEY)
    assert ctrl.sync(KEY) == pytest.approx(60)
    clock.advance(60)
    ctrl.sync(KEY)
    assert store.find("jobs", *KEY) is None and store.list("pods", "default") == []


def test_suspend_and_resume(world):
    store, ctrl, clock = world
    new_job(store, suspend=True, completions=2, parallelism=2)
    ctrl.sync(KEY)
    assert pods(store) == [] and conditions(store) == [("Suspended", "JobSuspended")]
    assert "startTime" not in job(store)["status"]
    assert to_table("jobs", [job(store)], "1", clock())["rows"][0]["cells"][1] == "Suspended"
    resumed = job(store)
    resumed["spec"]["suspend"] = False
    store.update("jobs", resumed)
    clock.advance(5)
    ctrl.sync(KEY)
    assert len(pods(store)) == 2 and job(store)["status"]["startTime"] == format_time(clock())
    assert job(store)["status"]["conditions"][0]["status"] == "False" and "Resumed" in reasons(store)
    suspended = job(store)
    suspended["spec"]["suspend"] = True
    store.update("jobs", suspended)
    ctrl.sync(KEY)
    assert pods(store) == [] and conditions(store) == [("Suspended", "JobSuspended")]


def test_indexed_completion(world):
    store, ctrl, clock = world
    new_job(store, completionMode="Indexed", completions=3, parallelism=2)
    ctrl.sync(KEY)
    indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods(store))
    assert indexes == ["0", "1"]
    report(store, clock, pods(store)[0], "Succeeded")
    ctrl.sync(KEY)
    assert job(store)["status"]["completedIndexes"] == "0"
    assert sorted(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods(store)) == \
        ["1", "2"]
    for pod in pods(store):
        report(store, clock, pod, "Succeeded")
    ctrl.sync(KEY)
    assert job(store)["status"]["completedIndexes"] == "0-2" and conditions(store)[-1][0] == "Complete"


@pytest.mark.asyncio
async def test_the_api_generates_the_selector_from_its_own_uid_and_refuses_bad_jobs(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings, "s3cret"), headers={"Authorization": "Bearer s3cret"})
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "work", "uid": "chosen-by-client"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}}}
    response = await client.post("/apis/batch/v1/namespaces/default/jobs", json=body)
    created = await response.json()
    uid = created["metadata"]["uid"]
    assert response.status == 201 and uid != "chosen-by-client" and created["status"] == {}
    assert created["spec"]["selector"] == {"matchLabels": {CONTROLLER_UID: uid}}
    assert created["spec"]["template"]["metadata"]["labels"]["controller-uid"] == uid
    body["metadata"]["name"] = "always"
    body["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    refused = await client.post("/apis/batch/v1/namespaces/default/jobs", json=body)
    status = await refused.json()
    assert refused.status == 422 and status["details"]["causes"][0]["field"] == "spec.template.spec.restartPolicy"
    anonymous = await (await aiohttp_client(create_app(settings, "s3cret"))).get("/apis/batch/v1/jobs")
    assert anonymous.status == 401
