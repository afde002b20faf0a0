"""A container's security context as kubelet makes it (``determineEffectiveSecurityContext``, ``verifyRunAsNonRoot``,
``getSeccompProfile``, ``getAppArmorProfile``), and what the node's admission says of seccomp, AppArmor and sysctls
(kubelet's sysctl and AppArmor admit handlers).

The pod's context gives ``runAsUser``, ``runAsGroup``, ``runAsNonRoot``, ``seccompProfile`` and ``appArmorProfile``
to every container that does not set its own; ``fsGroup`` and ``supplementalGroups`` are added to every container's
groups. An unset seccomp profile is ``RuntimeDefault`` (kubelet's ``seccompDefault: true``: a pod that asks nothing
still runs confined); a ``Localhost`` profile is a file under ``<data_dir>/seccomp`` (kubelet's
``<root-dir>/seccomp``), read without leaving it. Pure, apart from ``seccomp_profile`` reading that file and
``apparmor_enabled`` reading the host.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeworkers.k8s.pod import Container, Pod
from edgeworkers.runtime.types import ContainerSecurity

SECCOMP_DIR = "seccomp"  # under the data dir, as kubelet's <root-dir>/seccomp
RUNTIME_DEFAULT, LOCALHOST, UNCONFINED = "RuntimeDefault", "Localhost", "Unconfined"
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"  # the deprecated form kubelet still reads
_APPARMOR_BETA = {"runtime/default": RUNTIME_DEFAULT, "unconfined": UNCONFINED}

# kubelet's admission reasons (pkg/kubelet/sysctl, pkg/kubelet/lifecycle's AppArmor handler).
REASON_SYSCTL = "SysctlForbidden"
REASON_APPARMOR = "AppArmor"
# kube's SafeSysctlAllowlist (1.32): namespaced and isolated from the other pods of the node.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
})  # fmt: skip
# kube's namespaced sysctls (pkg/kubelet/sysctl/namespace.go): name or prefix -> the namespace holding it.
_IPC_NAMES = ("kernel.sem",)
_IPC_PREFIXES = ("kernel.shm", "kernel.msg", "fs.mqueue.")
_UTS_NAMES = ("kernel.hostname", "kernel.domainname")


class SecurityError(Exception):
    """The container cannot be given the security context it asks (kubelet's CreateContainerConfigError)."""


@dataclass(frozen=True)
class Profile:
    """A seccomp or AppArmor profile: its type (RuntimeDefault, Localhost, Unconfined, or what was asked) and the
    localhost profile's name."""

    type: str
    localhost: str = ""


def _field(pod: Pod, container: Container, name: str) -> Any:
    """A field of the effective context: the container's, else the pod's (kube's DetermineEffectiveSecurityContext)."""
    for ctx in (container.security_context, pod.spec.security_context):
        value = getattr(ctx, name, None) if ctx is not None else None
        if value is not None:
            return value
    return None


def _profile(value: Any) -> Profile | None:
    if value is None:
        return None
    data = value if isinstance(value, dict) else {}
    return Profile(str(data.get("type") or ""), str(data.get("localhostProfile") or ""))


def seccomp_of(pod: Pod, container: Container) -> Profile:
    """The container's seccomp profile (its own, else the pod's, else RuntimeDefault)."""
    return _profile(_field(pod, container, "seccomp_profile")) or Profile(RUNTIME_DEFAULT)


def apparmor_of(pod: Pod, container: Container) -> Profile | None:
    """The container's AppArmor profile (kube's apparmor.GetProfile: its field, the deprecated annotation, the pod's
    field); None: the runtime's default."""
    ctx = container.security_context
    if ctx is not None and ctx.app_armor_profile is not None:
        return _profile(ctx.app_armor_profile)
    beta = (pod.metadata.annotations or {}).get(APPARMOR_ANNOTATION + container.name)
    if beta is not None:
        if beta.startswith("localhost/"):
            return Profile(LOCALHOST, beta.removeprefix("localhost/"))
        return Profile(_APPARMOR_BETA.get(beta, beta))
    pod_ctx = pod.spec.security_context
    return _profile(pod_ctx.app_armor_profile) if pod_ctx is not None else None


def groups_of(pod: Pod) -> tuple[int, ...]:
    """The groups kubelet adds to every container: ``fsGroup``, then ``supplementalGroups``."""
    ctx = pod.spec.security_context
    if ctx is None:
        return ()
    return (*(() if ctx.fs_group is None else (ctx.fs_group,)), *(ctx.supplemental_groups or ()))


def verify_non_root(pod: Pod, container: Container, image_user: Callable[[], str]) -> None:
    """kubelet's verifyRunAsNonRoot: SecurityError when ``runAsNonRoot`` holds and the container would run as root
    (or as a user name that cannot be checked). ``image_user``: the image's ``USER`` ("" for none, which is root)."""
    if not _field(pod, container, "run_as_non_root"):
        return
    where = f'(pod: "{pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})", container: {container.name})'
    uid = _field(pod, container, "run_as_user")
    if uid is not None:
        if uid == 0:
            raise SecurityError(f"container's runAsUser breaks non-root policy {where}")
        return
    user = image_user().partition(":")[0]
    if user == "" or (user.isdigit() and int(user) == 0):
        raise SecurityError(f"container has runAsNonRoot and image will run as root {where}")
    if not user.isdigit():
        raise SecurityError(f"container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user "
                            f"is non-root {where}")


def read_localhost_profile(root: Path, name: str) -> str:
    """The text of seccomp profile ``name`` under ``root``, opened component by component without following a
    symlink, so a name can never read a file outside ``root``. SecurityError when it cannot be had."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not name or name.startswith("/") or ".." in parts or not parts:
        raise SecurityError(f"seccomp profile {name!r} must be a relative path under the node's profile directory")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(root, flags | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                next_fd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = next_fd
            file_fd = os.open(parts[-1], flags, dir_fd=fd)
        finally:
            os.close(fd)
        with os.fdopen(file_fd, encoding="utf-8") as profile:
            return profile.read()
    except OSError as exc:
        why = "it goes through a symlink or something not a directory" if exc.errno in (errno.ELOOP, errno.ENOTDIR) \
            else exc.strerror
        raise SecurityError(f"cannot load seccomp profile {name!r} from {root}: {why}") from None
    except UnicodeDecodeError:
        raise SecurityError(f"cannot load seccomp profile {name!r} from {root}: not UTF-8 text") from None


def _seccomp_option(profile: Profile, root: Path) -> str | None:
    if profile.type == UNCONFINED:
        return "unconfined"
    if profile.type == LOCALHOST:
        return read_localhost_profile(root, profile.localhost)
    return None  # RuntimeDefault: the engine's default profile


def _apparmor_option(profile: Profile | None, host_enabled: bool) -> str | None:
    if profile is None or profile.type == RUNTIME_DEFAULT or not host_enabled:
        return None  # the engine's default (docker-default where the host has AppArmor); none on a host without it
    return "unconfined" if profile.type == UNCONFINED else profile.localhost


def container_security(
    pod: Pod, container: Container, data_dir: Path, image_user: Callable[[], str], apparmor: bool
) -> ContainerSecurity:
    """What the runtime needs to confine ``container``; SecurityError (runAsNonRoot, a Localhost seccomp profile)
    when it cannot be given. ``apparmor``: whether the host enforces AppArmor."""
    verify_non_root(pod, container, image_user)
    ctx = container.security_context
    return ContainerSecurity(
        groups=groups_of(pod),
        read_only_root=bool(ctx and ctx.read_only_root_filesystem),
        no_new_privileges=ctx is not None and ctx.allow_privilege_escalation is False,
        seccomp=_seccomp_option(seccomp_of(pod, container), data_dir / SECCOMP_DIR),
        apparmor=_apparmor_option(apparmor_of(pod, container), apparmor),
        share_pid=bool(pod.spec.share_process_namespace),
    )


# --- admission -----------------------------------------------------------------------------------------------


def profile_refusals(pod: Pod, allow_unconfined_seccomp: bool, allow_unconfined_apparmor: bool) -> list[str]:
    """Each container's seccomp or AppArmor profile the node refuses: unknown types, a Localhost profile without a
    plain relative name, and Unconfined unless allowed (Pod Security's baseline)."""
    refusals = []
    for container in pod.spec.all_containers:
        for kind, profile, allowed, setting in (
            ("seccomp", seccomp_of(pod, container), allow_unconfined_seccomp, "SECCOMP"),
            ("AppArmor", apparmor_of(pod, container), allow_unconfined_apparmor, "APPARMOR"),
        ):
            if profile is None:
                continue
            where = f'container "{container.name}": {kind} profile'
            if profile.type not in (RUNTIME_DEFAULT, LOCALHOST, UNCONFINED):
                refusals.append(f"{where} type {profile.type!r} is not supported (want {RUNTIME_DEFAULT}, "
                                f"{LOCALHOST} or {UNCONFINED})")
            elif profile.type == UNCONFINED and not allowed:
                refusals.append(f"{where} {UNCONFINED} is not allowed (EDGEWORKERS_ADMISSION_ALLOW_UNCONFINED_"
                                f"{setting})")
            elif profile.type == LOCALHOST and not _plain_profile_name(profile.localhost, kind):
                refusals.append(f"{where} {LOCALHOST} needs a localhostProfile naming a file under the node's "
                                "profile directory")
    return refusals


def unsupported_refusals(pod: Pod) -> list[str]:
    """What a pod asks that Docker cannot give per pod, refused rather than ignored: a user namespace, an unmasked
    /proc, the Strict supplemental groups policy (Docker always merges the image's groups), an FQDN hostname."""
    refusals = []
    ctx = pod.spec.security_context
    if pod.spec.host_users is False:
        refusals.append("hostUsers: false (a user namespace per pod) is not supported on this node")
    if ctx is not None and ctx.supplemental_groups_policy == "Strict":
        refusals.append("supplementalGroupsPolicy: Strict is not supported on this node (the image's groups are merged)")
    if pod.spec.set_hostname_as_fqdn and pod.spec.subdomain:
        refusals.append("setHostnameAsFQDN is not supported on this node")
    for container in pod.spec.all_containers:
        if container.security_context is not None and container.security_context.proc_mount == "Unmasked":
            refusals.append(f'container "{container.name}": procMount: Unmasked is not supported on this node')
    return refusals


def _plain_profile_name(name: str, kind: str) -> bool:
    if not name.strip():
        return False
    if kind == "AppArmor":
        return "\0" not in name and "," not in name
    return not name.startswith("/") and ".." not in name.split("/")


def apparmor_refusal(pod: Pod, host_enabled: bool) -> tuple[str, str] | None:
    """kubelet's AppArmor admission: a pod asking a profile other than unconfined on a host without AppArmor."""
    if host_enabled:
        return None
    for container in pod.spec.all_containers:
        profile = apparmor_of(pod, container)
        if profile is not None and profile.type != UNCONFINED:
            return REASON_APPARMOR, "Cannot enforce AppArmor: AppArmor is not enabled on the host"
    return None


def apparmor_enabled() -> bool:
    """Whether this host enforces AppArmor (runc's apparmor.IsEnabled)."""
    try:
        return (os.path.isdir("/sys/kernel/security/apparmor")
                and Path("/sys/module/apparmor/parameters/enabled").read_text().startswith("Y"))
    except OSError:
        return False


def normalize_sysctl(name: str) -> str:
    """kube's NormalizeName: ``net/ipv4/ip_forward`` reads ``net.ipv4.ip_forward`` (a '/' first means '/' is the
    separator and '.' is part of a name)."""
    if "/" not in name:
        return name
    return name.translate(str.maketrans({".": "/", "/": "."}))


def sysctl_namespace(name: str) -> str | None:
    """The kernel namespace holding sysctl ``name`` ("ipc", "net", "uts"), None for a node-wide one."""
    if name in _IPC_NAMES or name.startswith(_IPC_PREFIXES):
        return "ipc"
    if name.startswith("net."):
        return "net"
    return "uts" if name in _UTS_NAMES else None


def check_unsafe_sysctls(patterns: list[str]) -> frozenset[str]:
    """The node's allowed unsafe sysctls (kubelet's --allowed-unsafe-sysctls: names, or prefixes ending in ``*``);
    ValueError for one that is not namespaced, which no pod could be given alone."""
    allowed = set()
    for pattern in patterns:
        name = normalize_sysctl(pattern.strip())
        if sysctl_namespace(name.removesuffix("*")) is None:
            raise ValueError(f"EDGEWORKERS_ADMISSION_ALLOWED_UNSAFE_SYSCTLS: sysctl {pattern!r} is not known to be "
                             "namespaced")
        allowed.add(name)
    return frozenset(allowed)


def pod_sysctls(pod: Pod) -> dict[str, str]:
    """The pod's sysctls by normalized name (set on its sandbox, which holds its namespaces)."""
    ctx = pod.spec.security_context
    entries = [s for s in (ctx.sysctls or []) if isinstance(s, dict)] if ctx is not None else []
    return {normalize_sysctl(str(s.get("name") or "")): str(s.get("value") or "") for s in entries}


def sysctl_refusal(pod: Pod, allowed_unsafe: frozenset[str]) -> tuple[str, str] | None:
    """kubelet's sysctl admission: a sysctl neither safe nor allowed, or one in a namespace the pod shares with the
    host, refused as (SysctlForbidden, "forbidden sysctl: ...")."""
    host = {"net": bool(pod.spec.host_network), "ipc": bool(pod.spec.host_ipc), "uts": bool(pod.spec.host_network)}
    for name in pod_sysctls(pod):
        allowed = name in SAFE_SYSCTLS or name in allowed_unsafe or any(
            pattern.endswith("*") and name.startswith(pattern[:-1]) for pattern in allowed_unsafe)
        namespace = sysctl_namespace(name)
        if not allowed:
            problem = f'"{name}" not allowlisted'
        elif namespace is not None and host[namespace]:
            problem = f'"{name}" not allowed with host {namespace} enabled'
        else:
            continue
        return REASON_SYSCTL, f"forbidden sysctl: {problem}"
    return None


__all__ = ["SecurityError", "apparmor_enabled", "apparmor_refusal", "check_unsafe_sysctls", "container_security",
           "pod_sysctls", "profile_refusals", "sysctl_refusal", "unsupported_refusals"]
