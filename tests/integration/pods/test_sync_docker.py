"""PodSyncer on the real DockerRuntime and dockerd: busybox pods, through whole syncs, observed with Docker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Pod, default_pod
from edgeworkers.pods.backoff import MemoryBackoffStore, RedisBackoffStore
from edgeworkers.pods.sync import PodSyncer, SyncResult
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import Container, ContainerState
from tests.polling import wait_for


@pytest.fixture
def runtime(node_name: str, settings: Settings) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(node_name, docker_host=settings.docker_host, sandbox_image=settings.sandbox_image)
    yield runtime
    runtime.close()


@pytest.fixture
def syncer(runtime: DockerRuntime, settings: Settings) -> PodSyncer:
    return PodSyncer(runtime, MemoryBackoffStore(), settings.model_copy(update={"default_grace_period_s": 1}))


def box(name: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", script],
            **fields}  # fmt: skip


def pod(name: str, containers: list[dict[str, Any]], uid: str = "", **spec: Any) -> Pod:
    body = {
        "metadata": {"name": name, "namespace": "default", "uid": uid or f"uid-{name}"},
        "spec": {"containers": containers, "terminationGracePeriodSeconds": 1, **spec},
    }
    return Pod.from_dict(default_pod(body))


def sync_until(syncer: PodSyncer, p: Pod, check: Callable[[SyncResult], bool], timeout_s: float = 30) -> SyncResult:
    """Re-sync the pod (as the follow-up tasks would) until ``check`` holds for the result."""
    results: list[SyncResult] = []

    def step() -> bool:
        results.append(syncer.sync(p.key, p))
        return check(results[-1])

    wait_for(step, timeout_s, interval_s=0.2)
    return results[-1]


def running(runtime: DockerRuntime, name: str | None = None) -> list[Container]:
    return [
        c for c in runtime.list_containers()
        if c.state == ContainerState.RUNNING and (name is None or c.name == name)
    ]  # fmt: skip


def statuses(result: SyncResult, kind: str = "containerStatuses") -> dict[str, dict]:
    assert result.status is not None
    return {s["name"]: s for s in result.status[kind]}


def test_a_busybox_pod_reaches_running_containers(syncer: PodSyncer, runtime: DockerRuntime) -> None:
    p = pod("web", [box("a", "sleep 3600"), box("b", "sleep 3600")])
    result = syncer.sync(p.key, p)
    assert result.status is not None and result.status["phase"] == "Running"
    assert sorted(c.name for c in running(runtime)) == ["POD", "a", "b"]
    a = statuses(result)["a"]
    assert a["ready"] and a["containerID"].startswith("docker://") and a["state"]["running"]["startedAt"]
    assert result.status["podIP"]


def test_delete_removes_every_container(syncer: PodSyncer, runtime: DockerRuntime) -> None:
    p = pod("gone", [box("a", "sleep 3600"), box("b", "sleep 3600")])
    syncer.sync(p.key, p)
    assert len(runtime.list_containers()) == 3
    started = time.monotonic()
    assert syncer.sync(p.key, None) == SyncResult(None, None, gone=True)
    assert runtime.list_containers() == []
    assert time.monotonic() - started < 10  # both app containers waited out their grace period in parallel


def test_an_update_recreates_only_the_changed_container(syncer: PodSyncer, runtime: DockerRuntime) -> None:
    p = pod("upd", [box("keep", "sleep 3600"), box("change", "sleep 3600")])
    syncer.sync(p.key, p)
    keep, change = (next(c for c in running(runtime) if c.name == n) for n in ("keep", "change"))
    updated = pod("upd", [box("keep", "sleep 3600"), box("change", "sleep 3600", image="busybox:1.28")])
    result = syncer.sync(updated.key, updated)
    assert [c.id for c in running(runtime, "keep")] == [keep.id]
    new = running(runtime, "change")
    assert len(new) == 1 and new[0].id != change.id and new[0].restart_count == 1
    assert statuses(result)["change"]["image"] == "busybox:1.28"


def test_an_init_container_runs_first(syncer: PodSyncer, runtime: DockerRuntime) -> None:
    mounts = [{"name": "work", "mountPath": "/work"}]
    p = pod(
        "init",
        [box("app", "cat /work/ready && sleep 3600", volumeMounts=mounts)],
        initContainers=[box("prepare", "sleep 1; echo done > /work/ready", volumeMounts=mounts)],
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    first = syncer.sync(p.key, p)
    assert first.status["phase"] == "Pending" and first.requeue_after
    assert [c.name for c in running(runtime) if not c.is_sandbox] == ["prepare"]
    result = sync_until(syncer, p, lambda r: r.status["phase"] == "Running")
    init = statuses(result, "initContainerStatuses")["prepare"]
    assert init["state"]["terminated"]["exitCode"] == 0
    app = next(c for c in running(runtime, "app"))
    prepare = next(c for c in runtime.list_containers() if c.name == "prepare")
    assert app.started_at >= prepare.finished_at
    assert b"done" in b"".join(runtime.logs(app.id))


def test_a_missing_image_with_pull_policy_never_is_err_image_never_pull(
    syncer: PodSyncer, runtime: DockerRuntime
) -> None:
    p = pod("never", [{"name": "app", "image": "edgeworkers-test/absent:1", "imagePullPolicy": "Never"}])
    result = syncer.sync(p.key, p)
    assert statuses(result)["app"]["state"]["waiting"] == {
        "reason": "ErrImageNeverPull",
        "message": 'Container image "edgeworkers-test/absent:1" is not present with pull policy of Never',
    }
    assert result.status["phase"] == "Pending"
    assert [c.name for c in runtime.list_containers()] == ["POD"]


@pytest.mark.parametrize(
    ("policy", "script", "phase", "restarts"),
    [("OnFailure", "exit 3", "Running", True), ("OnFailure", "exit 0", "Succeeded", False),
     ("Never", "exit 3", "Failed", False)],
)  # fmt: skip
def test_an_exiting_container_follows_the_restart_policy(
    syncer: PodSyncer, runtime: DockerRuntime, policy: str, script: str, phase: str, restarts: bool
) -> None:
    p = pod(f"exit-{policy.lower()}", [box("app", script)], restartPolicy=policy)
    syncer.sync(p.key, p)
    wait_for(lambda: not running(runtime, "app"), 20, "the app container to stop")
    result = syncer.sync(p.key, p)
    app = statuses(result)["app"]
    assert result.status["phase"] == phase
    if restarts:
        assert app["restartCount"] == 1  # the first restart is immediate
        assert app["lastState"]["terminated"]["exitCode"] == 3
        wait_for(lambda: not running(runtime, "app"), 20, "the app container to stop")
        crashed = syncer.sync(p.key, p)
        assert statuses(crashed)["app"]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert crashed.requeue_after == pytest.approx(10, abs=2)
    else:
        assert app["state"]["terminated"]["exitCode"] == int(script.split()[1])
        assert running(runtime) == []  # a finished pod's sandbox is stopped


def test_orphans_are_removed_and_desired_pods_kept(syncer: PodSyncer, runtime: DockerRuntime) -> None:
    keep, orphan = pod("keep", [box("app", "sleep 3600")]), pod("orphan", [box("app", "sleep 3600")])
    syncer.sync(keep.key, keep)
    syncer.sync(orphan.key, orphan)
    assert syncer.orphans({keep.key}) == [orphan.key]
    assert syncer.kill_pod(orphan.key, 1)
    assert {c.pod.key for c in runtime.list_containers()} == {keep.key}


def test_back_off_survives_a_new_agent_on_the_same_redis(
    runtime: DockerRuntime, settings: Settings, real_redis: redis.Redis
) -> None:
    p = pod("crash", [box("app", "exit 1")])
    first = PodSyncer(runtime, RedisBackoffStore(real_redis), settings)
    first.sync(p.key, p)
    wait_for(lambda: not running(runtime, "app"), 20, "the app container to stop")
    first.sync(p.key, p)  # the first restart is immediate
    wait_for(lambda: not running(runtime, "app"), 20, "the app container to stop")
    restarted = PodSyncer(DockerRuntime(runtime.node_name), RedisBackoffStore(real_redis), settings)
    result = restarted.sync(p.key, p)
    assert statuses(result)["app"]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert statuses(result)["app"]["restartCount"] == 1
