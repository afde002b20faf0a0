"""Node-level admission: what a pod may ask of this node, decided before anything of it is created.

kubelet admits each pod before running it (its admit handlers) and a cluster adds Pod Security admission at the API
server; an edge node often has no such API server in front of it (node-local pods never pass one), so the node
checks itself, with safe defaults that ``EDGEWORKERS_ADMISSION_*`` settings open up (README "Admission"):

- the pod's uid, namespace and name must be plain path components (they name its directory under the data dir);
- a hostPath only under an allowed prefix, read-only where the prefix says so, and never at, below or above a denied
  path (``volumes.hostpath``: the allowlist, empty by default, and the floor beneath it);
- no ``privileged`` container, no added capability outside the allowed list;
- no host network, PID or IPC namespace;
- no seccomp or AppArmor profile ``Unconfined``, no sysctl outside kube's safe set (``SysctlForbidden``), no AppArmor
  profile on a host without AppArmor (``AppArmor``), unless allowed (``pods.securitycontext``); nothing Docker cannot
  give one pod (a user namespace, an unmasked /proc, Strict supplemental groups, an FQDN hostname);
- no hostPort another pod of the node holds (kubelet's NodePorts predicate, ``admit_host_ports``), judged once, before
  the pod's first container: a pod refused stays refused (kubelet never admits a rejected pod again), and a pod
  admitted keeps its ports.

Pure: ``admit`` and ``admit_host_ports`` return the refusal (reason, message) or None; the sync turns a refusal into
the pod's ``Failed`` status and runs nothing of it. A hostPath is judged again, on what is really opened, when each
container is created (``volumes.hostpath.open_host_path``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Pod
from edgeworkers.pods.hostports import conflict, describe, held_ports, pod_port_mappings
from edgeworkers.pods.securitycontext import (
    apparmor_enabled,
    apparmor_refusal,
    check_unsafe_sysctls,
    profile_refusals,
    sysctl_refusal,
    unsupported_refusals,
)
from edgeworkers.runtime.types import Container
from edgeworkers.volumes.errors import UnsafePath
from edgeworkers.volumes.hostpath import ALLOWED_SETTING, HostPathPolicy
from edgeworkers.volumes.paths import safe_component

REASON_FORBIDDEN = "Forbidden"
REASON_INVALID = "Invalid"
# kubelet's predicate admission: the predicate's name as the reason, "Predicate <name> failed: <its reason>" the message.
REASON_NODE_PORTS = "NodePorts"
NODE_PORTS_MESSAGE = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"


@dataclass(frozen=True)
class AdmissionPolicy:
    host_paths: HostPathPolicy = HostPathPolicy()
    allow_privileged: bool = False
    allowed_capabilities: frozenset[str] = frozenset()
    allow_host_network: bool = False
    allow_host_pid: bool = False
    allow_host_ipc: bool = False
    allow_unconfined_seccomp: bool = False
    allow_unconfined_apparmor: bool = False
    allowed_unsafe_sysctls: frozenset[str] = frozenset()
    apparmor_enabled: bool = False  # whether the host enforces AppArmor

    @classmethod
    def from_settings(cls, settings: Settings) -> AdmissionPolicy:
        return cls(
            host_paths=HostPathPolicy.from_settings(settings),
            allow_privileged=settings.admission_allow_privileged,
            allowed_capabilities=frozenset(c.upper().removeprefix("CAP_") for c in
                                           settings.admission_allowed_capabilities),
            allow_host_network=settings.admission_allow_host_network,
            allow_host_pid=settings.admission_allow_host_pid,
            allow_host_ipc=settings.admission_allow_host_ipc,
            allow_unconfined_seccomp=settings.admission_allow_unconfined_seccomp,
            allow_unconfined_apparmor=settings.admission_allow_unconfined_apparmor,
            allowed_unsafe_sysctls=check_unsafe_sysctls(settings.admission_allowed_unsafe_sysctls),
            apparmor_enabled=apparmor_enabled(),
        )


def _identity(pod: Pod) -> str | None:
    meta = pod.metadata
    try:
        safe_component(meta.uid or "", "metadata.uid")
        safe_component(meta.namespace or "default", "metadata.namespace")
        safe_component(meta.name or "", "metadata.name")
    except UnsafePath as exc:
        return str(exc)
    return None


def admit(pod: Pod, policy: AdmissionPolicy) -> tuple[str, str] | None:
    """Why this node refuses ``pod`` as (reason, message), or None when it may run here."""
    problem = _identity(pod)
    if problem:
        return REASON_INVALID, problem
    refusals = []
    spec = pod.spec
    for flag, allowed, field in ((spec.host_network, policy.allow_host_network, "hostNetwork"),
                                 (spec.host_pid, policy.allow_host_pid, "hostPID"),
                                 (spec.host_ipc, policy.allow_host_ipc, "hostIPC")):
        if flag and not allowed:
            refusals.append(f"{field} is not allowed (EDGEWORKERS_ADMISSION_ALLOW_{_env(field)})")
    refusals += _host_path_refusals(pod, policy.host_paths)
    for container in spec.all_containers:
        ctx = container.security_context
        if ctx is None:
            continue
        if ctx.privileged and not policy.allow_privileged:
            refusals.append(f'container "{container.name}": privileged is not allowed '
                            "(EDGEWORKERS_ADMISSION_ALLOW_PRIVILEGED)")
        added = [c.upper().removeprefix("CAP_") for c in (ctx.capabilities.add or [])] if ctx.capabilities else []
        extra = [c for c in added if c not in policy.allowed_capabilities and "*" not in policy.allowed_capabilities]
        if extra:
            refusals.append(f'container "{container.name}": capabilities {", ".join(extra)} are not allowed '
                            "(EDGEWORKERS_ADMISSION_ALLOWED_CAPABILITIES)")
    refusals += profile_refusals(pod, policy.allow_unconfined_seccomp, policy.allow_unconfined_apparmor)
    refusals += unsupported_refusals(pod)
    if refusals:
        return REASON_FORBIDDEN, "Pod refused by the node's admission: " + "; ".join(refusals)
    return sysctl_refusal(pod, policy.allowed_unsafe_sysctls) or apparmor_refusal(pod, policy.apparmor_enabled)


def admit_host_ports(
    pod: Pod, key: str, containers: list[Container], previous: dict[str, Any] | None
) -> tuple[str, str, str] | None:
    """Why the node refuses ``pod`` (``key``: "namespace/name") its hostPorts, as (reason, message, the event's
    message naming the pod that holds the port), or None. ``containers``: every container of the node; ``previous``:
    the pod's last status here.

    Judged only for a pod none of whose containers exist yet; one refused before stays refused."""
    if previous and previous.get("phase") == "Failed" and previous.get("reason") == REASON_NODE_PORTS:
        message = str(previous.get("message") or NODE_PORTS_MESSAGE)
        return REASON_NODE_PORTS, message, message
    wanted = pod_port_mappings(pod)
    if not wanted or any(c.pod.uid == pod.metadata.uid for c in containers):
        return None
    found = conflict(wanted, held_ports(containers, key))
    if found is None:
        return None
    mapping, holder = found
    return REASON_NODE_PORTS, NODE_PORTS_MESSAGE, f"{NODE_PORTS_MESSAGE}: {describe(mapping)} is held by pod {holder}"


def _host_path_refusals(pod: Pod, policy: HostPathPolicy) -> list[str]:
    """Each hostPath volume not allowed, or mounted writable where only reading is allowed (PodSecurityPolicy's
    rule: every mount of the volume, in every container, read-only)."""
    writable = {}  # volume name -> the first container mounting it writable
    for container in pod.spec.all_containers:
        for mount in container.volume_mounts or []:
            if not mount.read_only:
                writable.setdefault(mount.name, container.name)
    refusals = []
    for volume in pod.spec.volumes or []:
        if volume.host_path is None:
            continue
        path = volume.host_path.path
        if (why := policy.refusal(path, read_only=True)) is not None:
            refusals.append(f'hostPath "{path}" of volume "{volume.name}" is not allowed: {why}')
        elif volume.name in writable and policy.refusal(path, read_only=False) is not None:
            refusals.append(f'container "{writable[volume.name]}" mounts hostPath "{path}" of volume "{volume.name}" '
                            f"writable: {ALLOWED_SETTING} allows it read-only only (readOnly: true on every mount)")
    return refusals


def _env(field: str) -> str:
    return {"hostNetwork": "HOST_NETWORK", "hostPID": "HOST_PID", "hostIPC": "HOST_IPC"}[field]


def refused_status(pod: Pod, reason: str, message: str, host_ip: str, now: str) -> dict[str, object]:
    """The status of a pod the node refused: Failed, with the reason, as kubelet's rejected pods."""
    return {"phase": "Failed", "reason": reason, "message": message, "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}] if host_ip else [], "startTime": now}


__all__ = ["AdmissionPolicy", "admit", "admit_host_ports", "refused_status"]
