"""The job table: guards (one log line, failures counted, last success recorded) and APScheduler's options; the
node's jobs (relist -> sync_pod tasks, the relist time in Redis) on a FakeRuntime, fakeredis and a fake clock."""
from __future__ import annotations

import logging

import fakeredis
import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from edgeworkers import metrics
from edgeworkers.config import Settings
from edgeworkers.constants import KEY_JOB_LAST_SUCCESS, KEY_PLEG_LAST_RELIST
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig
from scheduler.jobs import Guarded, Job, add_jobs, job_options
from scheduler.nodejobs import NodeJobs, pleg_message
from tests.unit.clock import Clock

POD = PodRef("uid-1", "default", "web")


def test_a_successful_run_records_its_time_and_exports_it() -> None:
    recorded = []
    guard = Guarded(Job("ok", lambda: None, 1), Clock(1234.5), lambda job, when: recorded.append((job, when)))
    assert guard() is True
    assert guard.last_success == 1234.5 and recorded == [("ok", 1234.5)]
    assert metrics.REGISTRY.get_sample_value("edgeworkers_job_last_success_timestamp_seconds", {"job": "ok"}) == 1234.5


def test_a_failing_run_is_one_log_line_and_a_count_and_keeps_the_last_success(caplog) -> None:
    def boom() -> None:
        raise RuntimeError("dockerd away")

    guard = Guarded(Job("boom", boom, 1), Clock())
    before = metrics.REGISTRY.get_sample_value("edgeworkers_job_failures_total", {"job": "boom"}) or 0
    with caplog.at_level(logging.WARNING):
        assert guard() is False
    assert [r.getMessage() for r in caplog.records] == ["job boom failed: RuntimeError: dockerd away"]
    assert caplog.records[0].exc_info is None  # no traceback
    assert guard.last_success is None and guard.failures == 1
    assert metrics.REGISTRY.get_sample_value("edgeworkers_job_failures_total", {"job": "boom"}) == before + 1


def test_a_failing_success_recorder_does_not_fail_the_job() -> None:
    def broken(job: str, when: float) -> None:
        raise ConnectionError("redis away")

    assert Guarded(Job("ok", lambda: None, 1), Clock(), broken)() is True


def test_every_job_runs_alone_coalesced_with_its_misfire_grace() -> None:
    scheduler = BackgroundScheduler()
    add_jobs(scheduler, [Job("pleg", lambda: None, 1, misfire_grace_s=1), Job("orphans", lambda: None, 60, jitter_s=6)])
    assert job_options(scheduler) == {
        "pleg": {"interval_s": 1.0, "max_instances": 1, "coalesce": True, "misfire_grace_time": 1, "jitter": None},
        "orphans": {"interval_s": 60.0, "max_instances": 1, "coalesce": True, "misfire_grace_time": 60, "jitter": 6},
    }


@pytest.mark.parametrize("jobs", [[Job("a", lambda: None, 1), Job("a", lambda: None, 2)]])
def test_duplicate_ids_are_refused(jobs) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        add_jobs(BackgroundScheduler(), jobs)


def test_a_job_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        Job("x", lambda: None, 0)


@pytest.fixture
def node(settings: Settings) -> tuple[NodeJobs, FakeRuntime, list[str], fakeredis.FakeRedis]:
    runtime = FakeRuntime(settings.node_name)
    client = fakeredis.FakeRedis()
    synced: list[str] = []
    return NodeJobs(settings, runtime, client, None, synced.append, clock=Clock(500.0)), runtime, synced, client


def test_the_relist_job_syncs_each_pod_with_events_once(node) -> None:
    jobs, runtime, synced, client = node
    sandbox = runtime.create_sandbox(SandboxConfig(POD))
    app = runtime.create_container(sandbox, POD, ContainerConfig("app", "busybox"))
    runtime.start_container(app)
    jobs.relist()
    assert synced == ["default/web"] and jobs.ready
    assert float(client.get(KEY_PLEG_LAST_RELIST)) == 500.0
    jobs.relist()
    assert synced == ["default/web"]  # nothing changed
    runtime.exit(app, 137)
    jobs.relist()
    assert synced == ["default/web", "default/web"]


def test_a_failed_send_reports_the_events_again_at_the_next_relist(node) -> None:
    jobs, runtime, synced, _ = node
    runtime.create_sandbox(SandboxConfig(POD))
    sends = iter([ConnectionError("redis away")])

    def flaky(key: str) -> None:
        error = next(sends, None)
        if error:
            raise error
        synced.append(key)

    jobs._sync = flaky
    with pytest.raises(ConnectionError):
        jobs.relist()
    jobs.relist()
    assert synced == ["default/web"]


def test_the_table_has_the_relist_every_period_from_settings(settings: Settings) -> None:
    config = settings.model_copy(update={"pleg_relist_period_s": 0.5})
    jobs = NodeJobs(config, FakeRuntime("n"), fakeredis.FakeRedis(), None, lambda key: None)
    assert [(job.id, job.interval_s) for job in jobs.table()] == [("pleg", 0.5)]


def test_success_times_go_to_redis(node) -> None:
    jobs, _, _, client = node
    jobs.record_success("pleg", 12.5)
    assert client.hget(KEY_JOB_LAST_SUCCESS, "pleg") == b"12.5"


def test_the_pleg_task_message_names_the_pod() -> None:
    message = pleg_message("default/web")
    assert message["route"]["resource"] == "default/pod/web"
    assert message["route"]["source"] == "pleg"


def test_the_table_runs_the_eviction_manager_every_period_from_settings(settings: Settings) -> None:
    class Eviction:
        def synchronize(self) -> list[str]:
            return []

    config = settings.model_copy(update={"eviction_period_s": 7.0})
    jobs = NodeJobs(config, FakeRuntime("n"), fakeredis.FakeRedis(), None, lambda key: None, eviction=Eviction())  # type: ignore[arg-type]
    assert [(job.id, job.interval_s) for job in jobs.table()] == [("pleg", 1.0), ("eviction", 7.0)]


def test_every_desired_pod_is_synced_each_period_with_jitter(settings: Settings, fake_redis) -> None:
    from edgeworkers.metamanager.outbox import Outbox
    from edgeworkers.metamanager.store import POD, MetaStore
    from edgeworkers.pods.reconcile import PodWorkers
    from edgeworkers.status.manager import StatusManager
    from tests.unit.pods.test_reconcile import FakeSyncer, RecordingBroker, pod

    store = MetaStore(fake_redis)
    broker = RecordingBroker()
    workers = PodWorkers(fake_redis, store, StatusManager(store, Outbox(fake_redis)), FakeSyncer(), broker, settings)
    config = settings.model_copy(update={"sync_frequency_s": 30.0})
    jobs = NodeJobs(config, FakeRuntime("n"), fake_redis, workers, lambda key: None)
    [job] = [job for job in jobs.table() if job.id == "pod-sync"]
    assert (job.interval_s, job.jitter_s) == (30.0, 3.0)
    for name in ("a", "b"):
        store.put(POD, pod(name))
    job.func()
    # Ordinary tasks, not follow-ups: a pod's chain of follow-up syncs is never doubled by them.
    assert sorted((m.actor_name, m.args[0]) for m, _ in broker.messages) == [
        ("update_pod", "default/a"), ("update_pod", "default/b")]
