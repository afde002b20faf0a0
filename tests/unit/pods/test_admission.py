"""Node-level admission from tables: the default policy refuses what would hand the node to a pod; hostPaths only
from the allowlist, read-only where it says so."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.config import AllowedHostPath, Settings
from edgeworkers.pods.admission import AdmissionPolicy, admit
from edgeworkers.volumes.hostpath import denied_host_path
from tests.unit.pods.podkit import container, make_pod

DEFAULT = AdmissionPolicy.from_settings(Settings(node_name="n1", data_dir=Path("/var/lib/edgeworkers"),
                                                 cloud_data_dir=Path("/var/lib/edgeworkers/cloud")))
# Everything allowed by the allowlist: what is left is the denied floor.
OPEN = AdmissionPolicy.from_settings(Settings(node_name="n1", data_dir=Path("/var/lib/edgeworkers"),
                                              cloud_data_dir=Path("/var/lib/edgeworkers/cloud"),
                                              admission_allowed_host_paths=[AllowedHostPath(pathPrefix="/")]))


@pytest.mark.parametrize(
    ("path", "refused"),
    [("/var/run/docker.sock", True), ("/run/docker.sock", True), ("/var/lib/docker/overlay2", True), ("/etc", True),
     ("/etc/", True), ("/etc/ssl/certs", True), ("/proc/1/root", True), ("/sys", True),
     ("/var/lib/edgeworkers", True), ("/var/lib/edgeworkers/pods/x", True), ("/", True), ("/var", True),
     ("/run", True), ("/var/lib", True), ("//etc/../etc", True),
     ("/srv/data", False), ("/tmp/x", False), ("/var/log/app", False), ("/etcetera", False), ("/home/edge", False)],
)  # fmt: skip
def test_denied_host_paths_cover_below_and_above(path: str, refused: bool) -> None:
    """``/`` or ``/var`` hold denied paths; ``/proc/1/root`` leads to ``/``; ``/etcetera`` is not ``/etc``."""
    assert (denied_host_path(path, DEFAULT.host_paths.denied) is not None) == refused


def test_a_symlinked_host_path_is_judged_by_where_it_leads(tmp_path: Path) -> None:
    (tmp_path / "innocent").symlink_to("/etc")
    assert denied_host_path(str(tmp_path / "innocent"), DEFAULT.host_paths.denied) == "/etc"


@pytest.mark.parametrize(
    ("spec", "refused"),
    [
        ({}, None),
        ({"hostPID": True}, "hostPID is not allowed"),
        ({"hostIPC": True}, "hostIPC is not allowed"),
        ({"initContainers": [container("init", securityContext={"privileged": True})]},
         'container "init": privileged is not allowed'),
        ({"containers": [container("app", securityContext={"privileged": False, "capabilities": {"drop": ["ALL"]}})]},
         None),
        ({"volumes": [{"name": "data", "hostPath": {"path": "/srv/data"}}]},
         'hostPath "/srv/data" of volume "data" is not allowed: it is not under a pathPrefix of '
         "EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS"),
    ],
)  # fmt: skip
def test_default_policy(spec: dict, refused: str | None) -> None:
    verdict = admit(make_pod(**spec), DEFAULT)
    assert (verdict is None) if refused is None else (verdict[0] == "Forbidden" and refused in verdict[1])


def test_the_denied_floor_holds_under_an_allowlist_of_everything() -> None:
    pod = make_pod(volumes=[{"name": "ok", "hostPath": {"path": "/srv/data"}},
                            {"name": "bad", "hostPath": {"path": "/sys"}}])
    reason, message = admit(pod, OPEN)
    assert reason == "Forbidden" and 'hostPath "/sys" of volume "bad" is not allowed' in message
    assert "EDGEWORKERS_ADMISSION_DENIED_HOST_PATHS" in message and '"/srv/data"' not in message


LOGS_READ_ONLY = AdmissionPolicy.from_settings(Settings(
    node_name="n1", admission_allowed_host_paths=[{"pathPrefix": "/var/log", "readOnly": True}]))


@pytest.mark.parametrize(
    ("mounts", "refused"),
    [
        ({"app": [{"name": "logs", "mountPath": "/logs", "readOnly": True}]}, None),
        ({"app": [{"name": "logs", "mountPath": "/logs"}]}, 'container "app" mounts hostPath "/var/log/app"'),
        ({"app": [{"name": "logs", "mountPath": "/logs", "readOnly": True}],
          "init": [{"name": "logs", "mountPath": "/logs", "readOnly": False}]}, 'container "init" mounts'),
        ({"app": []}, None),  # declared, never mounted
    ],
)  # fmt: skip
def test_a_read_only_prefix_refuses_a_writable_mount(mounts: dict, refused: str | None) -> None:
    pod = make_pod(volumes=[{"name": "logs", "hostPath": {"path": "/var/log/app"}}],
                   containers=[container("app", volumeMounts=mounts["app"])],
                   init=[container("init", volumeMounts=mounts["init"])] if "init" in mounts else None)
    verdict = admit(pod, LOGS_READ_ONLY)
    assert (verdict is None) if refused is None else (verdict[0] == "Forbidden" and refused in verdict[1])
    if refused:
        assert "read-only only" in verdict[1] and "EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS" in verdict[1]


def test_every_refusal_is_listed_with_the_setting_that_opens_it() -> None:
    pod = make_pod(hostNetwork=True, containers=[container("app", securityContext={"privileged": True})])
    reason, message = admit(pod, DEFAULT)
    assert "EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK" in message and "EDGEWORKERS_ADMISSION_ALLOW_PRIVILEGED" in message


def test_capabilities_are_allowed_by_name_with_or_without_the_cap_prefix() -> None:
    policy = AdmissionPolicy.from_settings(Settings(node_name="n1", admission_allowed_capabilities=["CAP_NET_ADMIN"]))
    net = make_pod(containers=[container("app", securityContext={"capabilities": {"add": ["NET_ADMIN"]}})])
    sys_admin = make_pod(containers=[container("app", securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})])
    assert admit(net, policy) is None and admit(sys_admin, policy) is not None


def test_the_settings_read_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEWORKERS_ADMISSION_DENIED_HOST_PATHS", '["/srv/secret"]')
    monkeypatch.setenv("EDGEWORKERS_ADMISSION_ALLOW_HOST_NETWORK", "true")
    policy = AdmissionPolicy.from_settings(Settings(node_name="n1"))
    assert policy.host_paths.denied == ("/srv/secret",) and policy.allow_host_network
