"""The composition root: one of each client per process, shared by every role, and nothing reached before use."""
from __future__ import annotations

from dataclasses import replace

from apscheduler.schedulers.background import BackgroundScheduler
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from edgeworkers import constants, wiring
from edgeworkers.config import Settings


def test_the_roles_share_the_processs_one_redis_client_and_one_runtime(tmp_path) -> None:
    services = wiring.build(Settings(data_dir=tmp_path / "data", redis_password_file=""))
    workers = wiring.pod_workers(services)
    _scheduler, jobs = wiring.periodic_jobs(services, BackgroundScheduler)
    assert services.broker.client is services.redis is workers.redis is jobs.redis
    assert services.store.redis is services.redis and workers.store is services.store
    assert workers.syncer._runtime is services.runtime and jobs.pleg._runtime is services.runtime
    assert jobs.prober._runtime is services.runtime and workers.status is services.status


def test_building_a_process_touches_neither_the_key_nor_a_server(tmp_path) -> None:
    """`edgeworkers pod list` builds the services too: no key file made, no connection opened."""
    services = wiring.build(Settings(data_dir=tmp_path / "data", redis_url="redis://127.0.0.1:1/0",
                                     docker_host="unix:///nonexistent.sock", redis_password_file=""))
    assert not (tmp_path / "data").exists()
    assert services.redis.connection_pool._created_connections == 0
    assert services.runtime._client is None


def test_a_worker_that_schedules_no_follow_up_has_no_broker(tmp_path) -> None:
    services = wiring.build(Settings(data_dir=tmp_path, redis_password_file=""))
    assert wiring.pod_workers(services, follow_ups=False).broker is None
    assert wiring.pod_workers(services).broker is services.broker


def test_a_pod_that_waited_for_another_tasks_pull_is_woken_by_a_sync_pod(tmp_path) -> None:
    services = replace(wiring.build(Settings(data_dir=tmp_path, redis_password_file="")), broker=StubBroker())
    services.broker.declare_queue(constants.QUEUE_POD_SYNC)
    wiring.pod_workers(services).syncer._images._wake("team/web")
    [raw] = services.broker.queues[constants.QUEUE_POD_SYNC].queue
    message = Message.decode(raw)
    assert (message.actor_name, message.args[0], message.args[1]["route"]["source"]) == ("sync_pod", "team/web",
                                                                                          "imagepuller")  # fmt: skip
    assert wiring.pod_workers(services, follow_ups=False).syncer._images._wake is None
