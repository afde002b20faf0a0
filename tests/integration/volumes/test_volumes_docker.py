"""Volumes, env and subPaths on real Docker through whole syncs (PodSyncer, the real DockerRuntime and HostMounter,
configmaps and secrets from a FakeSources): busybox containers print what they see."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Pod, default_pod
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.sync import PodSyncer, SyncResult
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import ContainerState
from edgeworkers.volumes.manager import VolumeManager
from edgeworkers.volumes.mounter import HostMounter
from tests.polling import wait_for
from tests.unit.volumes.sources import FakeSources


@pytest.fixture
def runtime(node_name: str, settings: Settings) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(node_name, docker_host=settings.docker_host, sandbox_image=settings.sandbox_image)
    yield runtime
    runtime.close()


@pytest.fixture
def sources() -> FakeSources:
    return FakeSources(configmaps={"app-config": {"greeting": "hello", "mode": "edge"}},
                       secrets={"creds": {"password": b"s3cret", "user": b"admin"}})


@pytest.fixture
def syncer(runtime: DockerRuntime, settings: Settings, sources: FakeSources) -> Iterator[PodSyncer]:
    config = settings.model_copy(update={"default_grace_period_s": 1})
    manager = VolumeManager(config.data_dir, sources, HostMounter())
    yield PodSyncer(runtime, MemoryBackoffStore(), config, meta=sources, volumes=manager)
    for uid in list((config.data_dir / "pods").glob("*")) if (config.data_dir / "pods").exists() else []:
        manager.teardown(uid.name)  # a failed test leaves no mount behind


def box(name: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", script],
            **fields}  # fmt: skip


def pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> Pod:
    body = {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": {"app": name,
                                                                                              "tier": "edge"}},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 1, **spec}}
    return Pod.from_dict(default_pod(body))


def sync_until_running(syncer: PodSyncer, p: Pod, timeout_s: float = 30) -> SyncResult:
    results: list[SyncResult] = []

    def step() -> bool:
        results.append(syncer.sync(p.key, p))
        return results[-1].status["phase"] == "Running"

    wait_for(step, timeout_s, "the pod Running", interval_s=0.2)
    return results[-1]


def output(runtime: DockerRuntime, name: str, marker: str = "END") -> str:
    def done() -> str | None:
        app = next(c for c in runtime.list_containers() if c.name == name and c.state == ContainerState.RUNNING)
        text = b"".join(runtime.logs(app.id)).decode()
        return text if marker in text else None

    return wait_for(done, 15, f"{name} to print what it sees")


def mounted_under(path: Path) -> list[Path]:
    return HostMounter().mounts_under(path)


SEE = ("cd /cfg && ls; for f in *; do echo \"$f=$(cat $f)\"; done; stat -L -c '%n %a' /items/conf/app.conf; "
       "grep ' /secret ' /proc/mounts; cat /secret/password; echo; stat -L -c '%a' /secret/user; "
       "cat /info/labels; echo; cat /shared/from-init; echo \"G=$GREETING P=$PW M=$CFG_mode N=$NAME IP=$IP\"; "
       "grep -c ' /proj tmpfs ' /proc/mounts; echo \"proj=$(cat /proj/g)/$(cat /proj/p)/$(cat /proj/n)\"; "
       "echo END; sleep 3600")


def test_a_pod_sees_its_configmap_secret_downward_and_shared_volumes(
    syncer: PodSyncer, runtime: DockerRuntime, settings: Settings
) -> None:
    p = pod(
        "seer",
        [box("app", SEE, volumeMounts=[
            {"name": "cfg", "mountPath": "/cfg"}, {"name": "items", "mountPath": "/items"},
            {"name": "secret", "mountPath": "/secret"}, {"name": "info", "mountPath": "/info"},
            {"name": "shared", "mountPath": "/shared"}, {"name": "proj", "mountPath": "/proj"}],
            env=[{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "greeting"}}},
                 {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                 {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            envFrom=[{"configMapRef": {"name": "app-config"}, "prefix": "CFG_"}])],
        initContainers=[box("init", "echo filled-by-init > /shared/from-init",
                            volumeMounts=[{"name": "shared", "mountPath": "/shared"}])],
        volumes=[
            {"name": "cfg", "configMap": {"name": "app-config"}},
            {"name": "items", "configMap": {"name": "app-config", "defaultMode": 0o440,
                                            "items": [{"key": "greeting", "path": "conf/app.conf", "mode": 0o600}]}},
            {"name": "secret", "secret": {"secretName": "creds", "defaultMode": 0o400}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "shared", "emptyDir": {}},
            {"name": "proj", "projected": {"sources": [
                {"configMap": {"name": "app-config", "items": [{"key": "greeting", "path": "g"}]}},
                {"secret": {"name": "creds", "items": [{"key": "password", "path": "p"}]}},
                {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
        ],
    )  # fmt: skip
    result = sync_until_running(syncer, p)
    seen = output(runtime, "app")
    assert "greeting\nmode\n" in seen and "greeting=hello\nmode=edge\n" in seen
    assert "/items/conf/app.conf 600\n" in seen
    assert " /secret tmpfs ro," in seen and "s3cret\n400\n" in seen
    assert 'app="seer"\ntier="edge"\n' in seen
    assert "filled-by-init\n" in seen
    assert f"G=hello P=s3cret M=edge N=seer IP={result.status['podIP']}\n" in seen
    assert "1\nproj=hello/s3cret/seer\n" in seen  # a projected volume: on a tmpfs too
    pod_dir = settings.data_dir / "pods" / "uid-seer"
    assert pod_dir / "volumes" / "secret" in mounted_under(pod_dir)  # on the host too: a tmpfs, not the disk

    assert syncer.sync(p.key, None).status is None
    assert mounted_under(pod_dir) == [] and not pod_dir.exists()


def test_a_configmap_update_reaches_the_mounted_file(
    syncer: PodSyncer, runtime: DockerRuntime, sources: FakeSources
) -> None:
    p = pod("follower", [box("app", "sleep 3600", volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])],
            volumes=[{"name": "cfg", "configMap": {"name": "app-config"}}])
    sync_until_running(syncer, p)
    app = next(c for c in runtime.list_containers() if c.name == "app")
    assert runtime.exec(app.id, ["cat", "/cfg/greeting"], 5).output == b"hello"
    sources.configmaps["app-config"] = {"greeting": "bonjour"}
    syncer.sync(p.key, p)
    assert runtime.exec(app.id, ["cat", "/cfg/greeting"], 5).output == b"bonjour"
    assert [c.id for c in runtime.list_containers() if c.name == "app"] == [app.id]  # not restarted


def test_a_symlink_planted_by_a_container_cannot_expose_the_host(
    syncer: PodSyncer, runtime: DockerRuntime, settings: Settings, tmp_path: Path
) -> None:
    secret_dir = tmp_path / "host-only"
    secret_dir.mkdir()
    (secret_dir / "key").write_text("host secret")
    # The planter runs first (an init container), so the link is there when the victim's mount is made.
    p = pod("planter", [
        box("victim", "cat /x/key; echo END; sleep 3600",
            volumeMounts=[{"name": "shared", "mountPath": "/x", "subPath": "link"}]),
    ], initContainers=[box("planter", f"ln -s {secret_dir} /shared/link; ln -s / /shared/root",
                           volumeMounts=[{"name": "shared", "mountPath": "/shared"}])],
        volumes=[{"name": "shared", "emptyDir": {}}])

    def refused() -> str | None:
        result = syncer.sync(p.key, p)
        victim = next(s for s in result.status["containerStatuses"] if s["name"] == "victim")
        message = (victim["state"].get("waiting") or {}).get("message", "")
        return message if "leads outside its volume" in message else None

    message = wait_for(refused, 30, "the victim refused its subPath")
    assert "subPath 'link'" in message
    assert not [c for c in runtime.list_containers() if c.name == "victim" and c.state == ContainerState.RUNNING]
    assert mounted_under(settings.data_dir / "pods" / "uid-planter") == []  # nothing was bound


def test_sub_paths_and_sub_path_exprs_are_bound_from_inside_their_volumes(
    syncer: PodSyncer, runtime: DockerRuntime, settings: Settings
) -> None:
    p = pod("subpaths", [box(
        "app", "echo written > /logs/out; cat /etc/greeting; echo; echo END; sleep 3600",
        env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        volumeMounts=[{"name": "shared", "mountPath": "/logs", "subPathExpr": "logs/$(POD)"},
                      {"name": "cfg", "mountPath": "/etc/greeting", "subPath": "greeting"},
                      {"name": "cfg", "mountPath": "/conf", "subPath": "..data", "readOnly": True}],
    )], volumes=[{"name": "shared", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "app-config"}}])
    result = syncer.sync(p.key, p)
    app = next(s for s in result.status["containerStatuses"] if s["name"] == "app")
    # '..data' is the atomic writer's own entry: refused as a subPath, the other two bound
    assert "subPath '..data' must not start with '..'" in app["state"]["waiting"]["message"]
    p.spec.containers[0].volume_mounts.pop()
    sync_until_running(syncer, p)
    seen = output(runtime, "app")
    assert "hello\nEND\n" in seen
    volume = settings.data_dir / "pods" / "uid-subpaths" / "volumes" / "shared"
    assert (volume / "logs" / "subpaths" / "out").read_text() == "written\n"
    binds = settings.data_dir / "pods" / "uid-subpaths" / "volume-subpaths"
    assert {p.relative_to(binds).as_posix() for p in mounted_under(binds)} == {"shared/app/0", "cfg/app/1"}
