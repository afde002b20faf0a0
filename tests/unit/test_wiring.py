"""The composition root: one of each client per process, shared by every role, and nothing reached before use."""
from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler

from edgeworkers import wiring
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
