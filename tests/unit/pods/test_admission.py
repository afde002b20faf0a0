"""Node-level admission from tables: the default policy refuses what would hand the node to a pod."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.pods.admission import AdmissionPolicy, admit, denied_host_path
from tests.unit.pods.podkit import container, make_pod

DEFAULT = AdmissionPolicy.from_settings(Settings(node_name="n1", data_dir=Path("/var/lib/edgeworkers"),
                                                 cloud_data_dir=Path("/var/lib/edgeworkers/cloud")))


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
    assert (denied_host_path(path, DEFAULT.denied_host_paths) is not None) == refused


def test_a_symlinked_host_path_is_judged_by_where_it_leads(tmp_path: Path) -> None:
    (tmp_path / "innocent").symlink_to("/etc")
    assert denied_host_path(str(tmp_path / "innocent"), DEFAULT.denied_host_paths) == "/etc"


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
        ({"volumes": [{"name": "ok", "hostPath": {"path": "/srv/data"}}, {"name": "bad", "hostPath": {"path": "/sys"}}]},
         'hostPath "/sys" of volume "bad"'),
    ],
)  # fmt: skip
def test_default_policy(spec: dict, refused: str | None) -> None:
    verdict = admit(make_pod(**spec), DEFAULT)
    assert (verdict is None) if refused is None else (verdict[0] == "Forbidden" and refused in verdict[1])


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
    assert policy.denied_host_paths == ("/srv/secret",) and policy.allow_host_network
