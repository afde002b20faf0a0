"""The security context as kubelet makes it (pods/securitycontext.py): merged pod and container fields, runAsNonRoot's
verdicts, seccomp and AppArmor profiles, and what the node's admission says of profiles and sysctls."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeworkers.pods.securitycontext import (
    SecurityError,
    apparmor_refusal,
    check_unsafe_sysctls,
    container_security,
    normalize_sysctl,
    pod_sysctls,
    profile_refusals,
    read_localhost_profile,
    sysctl_refusal,
    unsupported_refusals,
    verify_non_root,
)
from edgeworkers.runtime.docker import security_options
from edgeworkers.runtime.types import ContainerSecurity
from tests.unit.pods.podkit import container, make_pod

PROFILE = '{"defaultAction": "SCMP_ACT_ALLOW"}'


def secured(pod_ctx: dict | None = None, ctx: dict | None = None, **spec) -> tuple:
    app = container("app", **({"securityContext": ctx} if ctx is not None else {}))
    pod = make_pod(containers=[app], securityContext=pod_ctx or {}, **spec)
    return pod, pod.spec.containers[0]


def security(pod, spec, data_dir: Path = Path("/nowhere"), user: str = "1000", apparmor: bool = False):
    return container_security(pod, spec, data_dir, lambda: user, apparmor)


def test_groups_read_only_root_and_no_new_privileges() -> None:
    pod, spec = secured({"fsGroup": 2000, "supplementalGroups": [3000, 4000]},
                        {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False})
    assert security(pod, spec) == ContainerSecurity(groups=(2000, 3000, 4000), read_only_root=True,
                                                    no_new_privileges=True)
    assert security_options(security(pod, spec)) == {
        "group_add": ["2000", "3000", "4000"], "read_only": True, "security_opt": ["no-new-privileges"]}


def test_nothing_asked_is_the_engines_defaults() -> None:
    pod, spec = secured()
    assert security(pod, spec) == ContainerSecurity()
    assert security_options(ContainerSecurity()) == {"group_add": None, "read_only": False, "security_opt": None}


def test_allow_privilege_escalation_true_or_unset_sets_nothing() -> None:
    for ctx in ({"allowPrivilegeEscalation": True}, {}):
        pod, spec = secured(ctx=ctx)
        assert not security(pod, spec).no_new_privileges


@pytest.mark.parametrize(("pod_ctx", "ctx", "user", "error"), [
    ({"runAsNonRoot": True}, None, "", "container has runAsNonRoot and image will run as root"),
    ({"runAsNonRoot": True}, None, "0", "container has runAsNonRoot and image will run as root"),
    ({"runAsNonRoot": True}, None, "0:1000", "container has runAsNonRoot and image will run as root"),
    ({"runAsNonRoot": True}, None, "root",
     "container has runAsNonRoot and image has non-numeric user (root), cannot verify user is non-root"),
    (None, {"runAsNonRoot": True, "runAsUser": 0}, "1000", "container's runAsUser breaks non-root policy"),
    ({"runAsNonRoot": True, "runAsUser": 1000}, {"runAsUser": 0}, "", "container's runAsUser breaks non-root policy"),
    ({"runAsNonRoot": True}, None, "1000", None),
    ({"runAsNonRoot": True}, None, "1000:0", None),
    ({"runAsNonRoot": True, "runAsUser": 1000}, None, "", None),
    ({"runAsNonRoot": True}, {"runAsNonRoot": False}, "", None),  # the container's own field wins
    (None, None, "", None),
])  # fmt: skip
def test_run_as_non_root_as_kubelet_verifies_it(pod_ctx, ctx, user, error) -> None:
    pod, spec = secured(pod_ctx, ctx)
    if error is None:
        verify_non_root(pod, spec, lambda: user)
        return
    with pytest.raises(SecurityError) as raised:
        verify_non_root(pod, spec, lambda: user)
    assert str(raised.value) == f'{error} (pod: "web_default(uid-1)", container: app)'


def test_the_image_is_asked_only_when_no_run_as_user_decides() -> None:
    pod, spec = secured({"runAsNonRoot": True, "runAsUser": 1000})
    verify_non_root(pod, spec, lambda: pytest.fail("the image's user was read"))


def test_seccomp_profiles_container_over_pod(tmp_path: Path) -> None:
    (tmp_path / "seccomp" / "profiles").mkdir(parents=True)
    (tmp_path / "seccomp" / "profiles" / "audit.json").write_text(PROFILE)
    pod, spec = secured({"seccompProfile": {"type": "Unconfined"}},
                        {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}})
    assert security(pod, spec, tmp_path).seccomp == PROFILE
    pod, spec = secured({"seccompProfile": {"type": "Unconfined"}})
    assert security(pod, spec).seccomp == "unconfined"
    assert security_options(security(pod, spec))["security_opt"] == ["seccomp=unconfined"]
    pod, spec = secured({"seccompProfile": {"type": "RuntimeDefault"}})
    assert security(pod, spec).seccomp is None


def test_a_localhost_seccomp_profile_never_leaves_the_profile_directory(tmp_path: Path) -> None:
    root = tmp_path / "seccomp"
    root.mkdir()
    (tmp_path / "secret.json").write_text(PROFILE)
    os.symlink(tmp_path / "secret.json", root / "link.json")
    os.symlink(tmp_path, root / "up")
    for name, why in (("../secret.json", "must be a relative path"), ("/etc/passwd", "must be a relative path"),
                      ("link.json", "goes through a symlink"), ("up/secret.json", "goes through a symlink"),
                      ("missing.json", "No such file")):
        with pytest.raises(SecurityError, match=why):
            read_localhost_profile(root, name)


def test_apparmor_profiles_from_fields_and_annotations() -> None:
    pod, spec = secured({"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-deny-write"}})
    assert security(pod, spec, apparmor=True).apparmor == "k8s-deny-write"
    assert security(pod, spec, apparmor=False).apparmor is None
    pod, spec = secured(ctx={"appArmorProfile": {"type": "Unconfined"}})
    assert security_options(security(pod, spec, apparmor=True))["security_opt"] == ["apparmor=unconfined"]
    pod, spec = secured({"appArmorProfile": {"type": "Unconfined"}})
    pod.metadata.annotations = {"container.apparmor.security.beta.kubernetes.io/app": "localhost/from-annotation"}
    assert security(pod, spec, apparmor=True).apparmor == "from-annotation"  # the annotation before the pod's field
    pod, spec = secured({"appArmorProfile": {"type": "RuntimeDefault"}})
    assert security(pod, spec, apparmor=True).apparmor is None


def test_share_process_namespace() -> None:
    pod, spec = secured(shareProcessNamespace=True)
    assert security(pod, spec).share_pid


def test_profile_refusals() -> None:
    pod, _ = secured({"seccompProfile": {"type": "Unconfined"}}, {"appArmorProfile": {"type": "Unconfined"}})
    assert profile_refusals(pod, False, False) == [
        'container "app": seccomp profile Unconfined is not allowed (EDGEWORKERS_ADMISSION_ALLOW_UNCONFINED_SECCOMP)',
        'container "app": AppArmor profile Unconfined is not allowed (EDGEWORKERS_ADMISSION_ALLOW_UNCONFINED_APPARMOR)',
    ]
    assert profile_refusals(pod, True, True) == []
    pod, _ = secured({"seccompProfile": {"type": "Localhost", "localhostProfile": "../x.json"}},
                     {"appArmorProfile": {"type": "Strict"}})
    assert profile_refusals(pod, True, True) == [
        'container "app": seccomp profile Localhost needs a localhostProfile naming a file under the node\'s profile '
        "directory",
        "container \"app\": AppArmor profile type 'Strict' is not supported (want RuntimeDefault, Localhost or "
        "Unconfined)",
    ]


def test_apparmor_on_a_host_without_it() -> None:
    pod, _ = secured({"appArmorProfile": {"type": "RuntimeDefault"}})
    assert apparmor_refusal(pod, host_enabled=False) == (
        "AppArmor", "Cannot enforce AppArmor: AppArmor is not enabled on the host")
    assert apparmor_refusal(pod, host_enabled=True) is None
    pod, _ = secured({"appArmorProfile": {"type": "Unconfined"}})
    assert apparmor_refusal(pod, host_enabled=False) is None  # unconfined is what such a host gives anyway
    pod, _ = secured()
    assert apparmor_refusal(pod, host_enabled=False) is None


def sysctls(*pairs: tuple[str, str], **spec) -> object:
    pod, _ = secured({"sysctls": [{"name": n, "value": v} for n, v in pairs]}, **spec)
    return pod


def test_safe_sysctls_pass_and_go_to_the_sandbox() -> None:
    pod = sysctls(("kernel.shm_rmid_forced", "1"), ("net/ipv4/ip_local_port_range", "30000 40000"))
    assert sysctl_refusal(pod, frozenset()) is None
    assert pod_sysctls(pod) == {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_local_port_range": "30000 40000"}


@pytest.mark.parametrize(("name", "allowed", "spec", "message"), [
    ("kernel.msgmax", frozenset(), {}, '"kernel.msgmax" not allowlisted'),
    ("net.core.somaxconn", frozenset(), {}, '"net.core.somaxconn" not allowlisted'),
    ("net.core.somaxconn", frozenset({"net.core.*"}), {}, None),
    ("kernel.msgmax", frozenset({"kernel.msgmax"}), {}, None),
    ("kernel.msgmax", frozenset({"kernel.msg*"}), {"hostIPC": True}, '"kernel.msgmax" not allowed with host ipc enabled'),
    ("net.ipv4.tcp_syncookies", frozenset(), {"hostNetwork": True},
     '"net.ipv4.tcp_syncookies" not allowed with host net enabled'),
])  # fmt: skip
def test_unsafe_sysctls_are_refused_unless_allowed(name, allowed, spec, message) -> None:
    refusal = sysctl_refusal(sysctls((name, "1"), **spec), allowed)
    assert refusal == (None if message is None else ("SysctlForbidden", f"forbidden sysctl: {message}"))


def test_the_allowed_unsafe_sysctls_must_be_namespaced() -> None:
    assert check_unsafe_sysctls(["net.core.somaxconn", "kernel.shm*", "fs/mqueue/msg_max"]) == frozenset(
        {"net.core.somaxconn", "kernel.shm*", "fs.mqueue.msg_max"})
    for bad in ("kernel.panic", "vm.*", "*"):
        with pytest.raises(ValueError, match="not known to be namespaced"):
            check_unsafe_sysctls([bad])


def test_normalize_sysctl_names() -> None:
    assert normalize_sysctl("net/ipv4/conf/eno2.100/rp_filter") == "net.ipv4.conf.eno2/100.rp_filter"
    assert normalize_sysctl("net.ipv4.tcp_syncookies") == "net.ipv4.tcp_syncookies"


def test_what_docker_cannot_give_one_pod_is_refused_not_ignored() -> None:
    pod, _ = secured({"supplementalGroupsPolicy": "Strict"}, {"procMount": "Unmasked"}, hostUsers=False,
                     setHostnameAsFQDN=True, subdomain="backend")
    assert unsupported_refusals(pod) == [
        "hostUsers: false (a user namespace per pod) is not supported on this node",
        "supplementalGroupsPolicy: Strict is not supported on this node (the image's groups are merged)",
        "setHostnameAsFQDN is not supported on this node",
        'container "app": procMount: Unmasked is not supported on this node',
    ]
    pod, _ = secured({"supplementalGroupsPolicy": "Merge"}, {"procMount": "Default"}, hostUsers=True,
                     setHostnameAsFQDN=True)
    assert unsupported_refusals(pod) == []
