"""PodSyncer with security contexts and DNS (FakeRuntime): runAsNonRoot refused as kubelet refuses it, admission of
profiles and sysctls, the sandbox's sysctls, the containers' confinement, resolv.conf and hosts mounts."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.pods.admission import AdmissionPolicy
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.convert import sandbox_hash
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerSecurity, SandboxConfig
from tests.unit.clock import Clock
from tests.unit.pods.podkit import T0, container, make_pod


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(node_name="n1", clock=Clock(T0))


def make_syncer(runtime: FakeRuntime, tmp_path: Path, events: list | None = None, **settings) -> PodSyncer:
    config = Settings(node_name="n1", data_dir=tmp_path, **settings)
    record = None if events is None else (lambda pod, reason, message, kind: events.append((reason, message, kind)))
    return PodSyncer(runtime, MemoryBackoffStore(), config, Clock(T0), events=record)


def app_status(status: dict) -> dict:
    return status["containerStatuses"][0]["state"]


def test_run_as_non_root_with_a_root_image_is_create_container_config_error(runtime, tmp_path) -> None:
    pod = make_pod(securityContext={"runAsNonRoot": True})
    state = app_status(make_syncer(runtime, tmp_path).sync(pod.key, pod).status)
    assert state["waiting"] == {"reason": "CreateContainerConfigError", "message": "container has runAsNonRoot and "
                                'image will run as root (pod: "web_default(uid-1)", container: app)'}
    assert [c.name for c in runtime.list_containers() if not c.is_sandbox] == []


def test_run_as_non_root_with_a_numeric_image_user_runs(runtime, tmp_path) -> None:
    runtime.image_users["busybox"] = "65534"
    pod = make_pod(securityContext={"runAsNonRoot": True})
    assert "running" in app_status(make_syncer(runtime, tmp_path).sync(pod.key, pod).status)


def test_the_containers_are_confined_as_asked(runtime, tmp_path) -> None:
    pod = make_pod(containers=[container("app", securityContext={"readOnlyRootFilesystem": True,
                                                                  "allowPrivilegeEscalation": False})],
                   securityContext={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                                    "supplementalGroups": [4000], "sysctls": [{"name": "kernel.shm_rmid_forced",
                                                                                "value": "1"}]},
                   shareProcessNamespace=True)
    make_syncer(runtime, tmp_path).sync(pod.key, pod)
    sandbox = next(runtime.config_of(c.id) for c in runtime.list_containers() if c.is_sandbox)
    app = next(runtime.config_of(c.id) for c in runtime.list_containers() if not c.is_sandbox)
    assert isinstance(sandbox, SandboxConfig) and sandbox.sysctls == {"kernel.shm_rmid_forced": "1"}
    assert app.user == "1000:3000"
    assert app.security == ContainerSecurity(groups=(2000, 4000), read_only_root=True, no_new_privileges=True,
                                             share_pid=True)
    assert [m.container_path for m in app.mounts] == ["/etc/resolv.conf", "/etc/hosts", "/dev/termination-log"]
    hosts = (tmp_path / "pods" / "uid-1" / "etc-hosts").read_text()
    assert hosts.startswith("# Kubernetes-managed hosts file.\n") and hosts.endswith("\tweb\n")


def test_a_sandbox_hash_without_sysctls_is_unchanged() -> None:
    assert sandbox_hash(make_pod()) != sandbox_hash(make_pod(securityContext={"sysctls": [
        {"name": "kernel.shm_rmid_forced", "value": "1"}]}))


@pytest.mark.parametrize(("spec", "settings", "reason", "message"), [
    ({"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}}, {},
     "SysctlForbidden", 'forbidden sysctl: "net.core.somaxconn" not allowlisted'),
    ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, {}, "Forbidden",
     'Pod refused by the node\'s admission: container "app": seccomp profile Unconfined is not allowed '
     "(EDGEWORKERS_ADMISSION_ALLOW_UNCONFINED_SECCOMP)"),
    ({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}}, {}, "AppArmor",
     "Cannot enforce AppArmor: AppArmor is not enabled on the host"),
])  # fmt: skip
def test_admission_refuses_profiles_and_sysctls(runtime, tmp_path, monkeypatch, spec, settings, reason,
                                                message) -> None:
    monkeypatch.setattr("edgeworkers.pods.admission.apparmor_enabled", lambda: False)
    events: list = []
    pod = make_pod(**spec)
    status = make_syncer(runtime, tmp_path, events, **settings).sync(pod.key, pod).status
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", reason, message)
    assert runtime.list_containers() == [] and events == [(reason, message, "Warning")]


def test_settings_allow_what_admission_refuses_by_default(runtime, tmp_path) -> None:
    pod = make_pod(securityContext={"seccompProfile": {"type": "Unconfined"},
                                    "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]})
    syncer = make_syncer(runtime, tmp_path, admission_allow_unconfined_seccomp=True,
                         admission_allowed_unsafe_sysctls=["net.core.*"])
    assert syncer.sync(pod.key, pod).status["phase"] == "Running"


def test_a_setting_allowing_a_node_wide_sysctl_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="'kernel.panic' is not known to be namespaced"):
        AdmissionPolicy.from_settings(Settings(admission_allowed_unsafe_sysctls=["kernel.panic"]))
