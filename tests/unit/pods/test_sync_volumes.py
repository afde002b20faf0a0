"""PodSyncer with volumes, env sources and admission, on FakeRuntime and a FakeMounter: a pod waits for its
configmaps and starts once they arrive, updates reach its files, refused pods run nothing, and a pod's volumes go
only once its containers are gone."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerState
from edgeworkers.volumes.hostpath import HostPathPolicy
from edgeworkers.volumes.manager import VolumeManager
from edgeworkers.volumes.mounter import FakeMounter
from tests.unit.clock import Clock
from tests.unit.pods.podkit import T0, container, make_pod
from tests.unit.volumes.sources import FakeSources


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(node_name="n1", clock=Clock(T0), images=["edgeworkers/pause:latest", "busybox"])


@pytest.fixture
def sources() -> FakeSources:
    return FakeSources(secrets={"creds": {"password": b"s3cret"}})


@pytest.fixture
def mounter() -> FakeMounter:
    return FakeMounter()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def make_syncer(runtime: FakeRuntime, sources: FakeSources, mounter: FakeMounter, data: Path,
                **settings: object) -> PodSyncer:
    config = Settings(node_name="n1", data_dir=data, **settings)
    return PodSyncer(runtime, MemoryBackoffStore(), config, Clock(T0), meta=sources,
                     volumes=VolumeManager(data, sources, mounter, host_paths=HostPathPolicy.from_settings(config)))


@pytest.fixture
def syncer(runtime: FakeRuntime, sources: FakeSources, mounter: FakeMounter, data: Path) -> PodSyncer:
    return make_syncer(runtime, sources, mounter, data)


def app_names(runtime: FakeRuntime) -> list[str]:
    return sorted(c.name for c in runtime.list_containers() if c.state == ContainerState.RUNNING and not c.is_sandbox)


def waiting(status: dict, name: str = "app") -> dict:
    return next(s for s in status["containerStatuses"] if s["name"] == name)["state"].get("waiting") or {}


CFG_POD = dict(
    containers=[container("app", volumeMounts=[{"name": "cfg", "mountPath": "/etc/app"}],
                          env=[{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}])],
    volumes=[{"name": "cfg", "configMap": {"name": "app-config"}}],
)


def test_a_pod_waits_for_its_configmap_and_starts_once_it_arrives(
    syncer: PodSyncer, runtime: FakeRuntime, sources: FakeSources, data: Path
) -> None:
    pod = make_pod(**CFG_POD)
    result = syncer.sync(pod.key, pod)
    assert waiting(result.status) == {"reason": "CreateContainerConfigError",
                                      "message": 'configmap "app-config" not found'}
    assert result.requeue_after is not None  # looked at again: no manual step
    assert runtime.list_containers() == []  # not even the sandbox
    sources.configmaps["app-config"] = {"greeting": "hello"}
    result = syncer.sync(pod.key, pod)
    assert app_names(runtime) == ["app"] and result.status["phase"] == "Running"
    app = next(c for c in runtime.list_containers() if c.name == "app")
    config = runtime.config_of(app.id)
    volume = data / "pods" / "uid-1" / "volumes" / "cfg"
    assert [(m.host_path, m.container_path, m.read_only) for m in config.mounts][0] == (str(volume), "/etc/app", True)
    assert config.env == {"PW": "s3cret"}
    assert (volume / "greeting").read_text() == "hello"


def test_a_configmap_update_reaches_the_files_without_a_restart(
    syncer: PodSyncer, runtime: FakeRuntime, sources: FakeSources, data: Path
) -> None:
    sources.configmaps["app-config"] = {"greeting": "hello"}
    pod = make_pod(**CFG_POD)
    syncer.sync(pod.key, pod)
    before = runtime.list_containers()
    sources.configmaps["app-config"] = {"greeting": "bonjour"}
    syncer.sync(pod.key, pod)
    assert (data / "pods" / "uid-1" / "volumes" / "cfg" / "greeting").read_text() == "bonjour"
    assert runtime.list_containers() == before


def test_a_secret_volume_is_on_tmpfs_and_read_only(
    syncer: PodSyncer, runtime: FakeRuntime, mounter: FakeMounter, data: Path
) -> None:
    pod = make_pod(containers=[container("app", volumeMounts=[{"name": "s", "mountPath": "/s"}])],
                   volumes=[{"name": "s", "secret": {"secretName": "creds"}}])
    syncer.sync(pod.key, pod)
    volume = data / "pods" / "uid-1" / "volumes" / "s"
    assert mounter.mounts[volume] == "tmpfs"
    app = next(c for c in runtime.list_containers() if c.name == "app")
    assert runtime.config_of(app.id).mounts[0].read_only


def test_a_planted_symlink_sub_path_is_refused_and_nothing_is_bound(
    syncer: PodSyncer, runtime: FakeRuntime, mounter: FakeMounter, data: Path
) -> None:
    pod = make_pod(containers=[container("app", volumeMounts=[{"name": "shared", "mountPath": "/x",
                                                               "subPath": "link"}])],
                   volumes=[{"name": "shared", "emptyDir": {}}])
    (data / "pods" / "uid-1" / "volumes" / "shared").mkdir(parents=True)
    (data / "pods" / "uid-1" / "volumes" / "shared" / "link").symlink_to("/etc")
    result = syncer.sync(pod.key, pod)
    assert waiting(result.status)["reason"] == "CreateContainerConfigError"
    assert "subPath 'link' leads outside its volume" in waiting(result.status)["message"]
    assert not [call for call in mounter.calls if call[0] == "bind_fd"] and app_names(runtime) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"containers": [container("app", securityContext={"privileged": True})]},
         'container "app": privileged is not allowed'),
        ({"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]},
         'hostPath "/var/run/docker.sock" of volume "sock" is not allowed'),
        ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, 'hostPath "/" of volume "root" is not allowed'),
        ({"hostNetwork": True}, "hostNetwork is not allowed"),
        ({"containers": [container("app", securityContext={"capabilities": {"add": ["NET_ADMIN"]}})]},
         "capabilities NET_ADMIN are not allowed"),
    ],
)  # fmt: skip
def test_a_pod_the_node_refuses_is_failed_and_nothing_of_it_runs(
    syncer: PodSyncer, runtime: FakeRuntime, data: Path, spec: dict, message: str
) -> None:
    pod = make_pod(**spec)
    result = syncer.sync(pod.key, pod)
    assert (result.status["phase"], result.status["reason"]) == ("Failed", "Forbidden")
    assert message in result.status["message"]
    assert result.requeue_after is None
    assert runtime.list_containers() == [] and not (data / "pods").exists()


def test_admission_opens_up_with_its_settings(runtime: FakeRuntime, sources: FakeSources, mounter: FakeMounter,
                                              data: Path) -> None:
    syncer = make_syncer(runtime, sources, mounter, data, admission_allow_privileged=True,
                         admission_denied_host_paths=[], admission_allowed_capabilities=["*"],
                         admission_allowed_host_paths=[{"pathPrefix": "/"}])
    pod = make_pod(containers=[container("app", securityContext={"privileged": True,
                                                                  "capabilities": {"add": ["SYS_ADMIN"]}})],
                   volumes=[{"name": "etc", "hostPath": {"path": "/etc"}}])
    assert syncer.sync(pod.key, pod).status["phase"] == "Running"


@pytest.mark.parametrize("uid", ["..", "../..", ".", "a/b"])
def test_a_pod_whose_uid_is_not_a_plain_name_is_refused_before_anything_is_made(
    syncer: PodSyncer, runtime: FakeRuntime, data: Path, uid: str
) -> None:
    keep = data / "secrets.key"
    keep.parent.mkdir(parents=True)
    keep.write_text("key")
    pod = make_pod(uid=uid, volumes=[{"name": "v", "emptyDir": {}}],
                   containers=[container("app", volumeMounts=[{"name": "v", "mountPath": "/v"}])])
    result = syncer.sync(pod.key, pod)
    assert (result.status["phase"], result.status["reason"]) == ("Failed", "Invalid")
    assert "metadata.uid" in result.status["message"]
    deleting = pod.model_copy(deep=True)
    deleting.metadata.deletion_timestamp = "2027-01-15T08:00:00Z"
    assert syncer.sync(pod.key, deleting).status is None
    assert keep.read_text() == "key" and runtime.list_containers() == []


def test_volumes_are_removed_only_once_nothing_of_the_pod_runs(
    syncer: PodSyncer, runtime: FakeRuntime, mounter: FakeMounter, data: Path
) -> None:
    pod = make_pod(containers=[container("app", volumeMounts=[{"name": "s", "mountPath": "/s"}])],
                   volumes=[{"name": "s", "secret": {"secretName": "creds"}}, {"name": "e", "emptyDir": {}}])
    syncer.sync(pod.key, pod)
    runtime.fail("stop_container", ContainerRuntimeError("cannot kill container"))
    result = syncer.sync(pod.key, None)
    assert result.requeue_after is not None and not result.gone
    assert (data / "pods" / "uid-1" / "volumes" / "e").is_dir() and mounter.mounts
    result = syncer.sync(pod.key, None)
    assert result.gone and result.status is None
    assert not (data / "pods" / "uid-1").exists() and mounter.mounts == {}


def test_a_stopped_container_the_engine_cannot_remove_does_not_hold_the_deletion(
    syncer: PodSyncer, runtime: FakeRuntime, mounter: FakeMounter, data: Path
) -> None:
    """As kubelet: a deletion is confirmed once nothing of the pod runs and its volumes are gone; a dead container
    dockerd cannot remove (its root filesystem busy after a restart) is left to the container GC."""
    pod = make_pod(containers=[container("app", volumeMounts=[{"name": "s", "mountPath": "/s"}])],
                   volumes=[{"name": "s", "secret": {"secretName": "creds"}}])
    syncer.sync(pod.key, pod)
    runtime.fail("remove_container", ContainerRuntimeError("device or resource busy"))
    result = syncer.sync(pod.key, None)
    assert result.gone and mounter.mounts == {} and not (data / "pods" / "uid-1").exists()
    assert runtime.list_containers(pod.key) and not any(c.state == ContainerState.RUNNING
                                                        for c in runtime.list_containers(pod.key))


def test_a_deleted_pod_that_never_got_a_container_has_its_volumes_removed(
    syncer: PodSyncer, runtime: FakeRuntime, mounter: FakeMounter, data: Path
) -> None:
    pod = make_pod(volumes=[{"name": "s", "secret": {"secretName": "creds"}},
                            {"name": "later", "configMap": {"name": "not-yet"}}])
    syncer.sync(pod.key, pod)  # the secret is mounted, the configmap is missing: no container
    assert mounter.mounts and runtime.list_containers() == []
    deleting = pod.model_copy(deep=True)
    deleting.metadata.deletion_timestamp = "2027-01-15T08:00:00Z"
    assert syncer.sync(pod.key, deleting).status is None
    assert mounter.mounts == {} and not (data / "pods" / "uid-1").exists()


def test_volumes_of_a_pod_gone_without_a_container_are_found_by_its_key(
    syncer: PodSyncer, runtime: FakeRuntime, mounter: FakeMounter, data: Path
) -> None:
    """A pod waiting for a configmap (its secret already on a tmpfs) and then removed from the desired state
    outright (no uid known to the sync), or replaced by a new uid: its volumes go all the same."""
    waiting = dict(volumes=[{"name": "s", "secret": {"secretName": "creds"}},
                            {"name": "later", "configMap": {"name": "not-yet"}}])
    first = make_pod(uid="u1", **waiting)
    syncer.sync(first.key, first)
    second = make_pod(uid="u2", **waiting)
    syncer.sync(second.key, second)
    assert not (data / "pods" / "u1").exists() and (data / "pods" / "u2").exists()
    assert syncer.sync(second.key, None).status is None
    assert mounter.mounts == {} and list((data / "pods").iterdir()) == []


def test_downward_api_files_follow_label_changes(syncer: PodSyncer, data: Path) -> None:
    volumes = [{"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                           "fieldRef": {"fieldPath": "metadata.labels"}}]}}]
    pod = make_pod(labels={"app": "web"}, volumes=volumes)
    syncer.sync(pod.key, pod)
    relabelled = make_pod(labels={"app": "web", "track": "canary"}, volumes=volumes)
    syncer.sync(relabelled.key, relabelled)
    assert (data / "pods" / "uid-1" / "volumes" / "info" / "labels").read_text() == 'app="web"\ntrack="canary"'


def test_refusals_and_waits_are_recorded_as_warning_events(
    runtime: FakeRuntime, sources: FakeSources, mounter: FakeMounter, data: Path
) -> None:
    recorded: list[tuple[str, str, str]] = []
    config = Settings(node_name="n1", data_dir=data)
    syncer = PodSyncer(runtime, MemoryBackoffStore(), config, Clock(T0), meta=sources,
                       volumes=VolumeManager(data, sources, mounter),
                       events=lambda pod, reason, message, kind: kind == "Warning" and recorded.append(
                           (reason, message, kind)))
    refused = make_pod(name="bad", hostNetwork=True)
    syncer.sync(refused.key, refused)
    waiting = make_pod(**CFG_POD)
    syncer.sync(waiting.key, waiting)
    sources.configmaps["app-config"] = {"ok": "1", "not valid": "2"}
    env_from = make_pod(name="envy", containers=[container("app", envFrom=[{"configMapRef": {"name": "app-config"}}])])
    syncer.sync(env_from.key, env_from)
    assert [(reason, kind) for reason, _, kind in recorded] == [
        ("Forbidden", "Warning"), ("FailedMount", "Warning"), ("MissingClusterDNS", "Warning"),
        ("InvalidEnvironmentVariableNames", "Warning")]
    assert 'configmap "app-config" not found' in recorded[1][1] and "[not valid]" in recorded[3][1]
