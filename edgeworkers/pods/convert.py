"""Pod spec -> runtime configs (kubelet's generateContainerConfig and makeMounts, trimmed), and spec hashes.

What is not supported yet (env from configmaps/secrets, configMap/secret/downwardAPI volumes) raises
``ConfigError``: the sync shows it as the container's ``CreateContainerConfigError`` instead of crashing.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from edgeworkers.k8s.pod import Container, Pod, Volume
from edgeworkers.k8s.quantity import cpu_to_millicores, cpu_to_nanocpus, to_bytes
from edgeworkers.runtime.types import ContainerConfig, Mount, PodRef, SandboxConfig

# Fields of a container whose change recreates it (kubelet's HashContainer covers the whole spec;
# probes and lifecycle are left out so that a probe tweak does not restart the workload).
HASHED_FIELDS = ("image", "command", "args", "env", "envFrom", "workingDir", "resources", "securityContext",
                 "ports", "volumeMounts")  # fmt: skip
# kubelet's cm.MinShares / MaxShares / SharesPerCPU.
MIN_SHARES = 2
MAX_SHARES = 262_144
SHARES_PER_CPU = 1024


class ConfigError(Exception):
    """The container's config cannot be generated (kubelet's CreateContainerConfigError)."""


def pod_ref(pod: Pod) -> PodRef:
    return PodRef(pod.metadata.uid or "", pod.metadata.namespace or "default", pod.metadata.name or "")


def _pruned(value: Any) -> Any:
    """``value`` without empty members, so that ``[]``, ``{}`` and absent hash alike."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _digest(data: Any) -> str:
    text = json.dumps(_pruned(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def container_hash(container: Container) -> str:
    """A stable hash of the spec fields whose change recreates the container."""
    spec = container.to_dict()
    resources = spec.get("resources") or {}
    # The API server copies limits into missing requests: a defaulted and an undefaulted spec hash alike.
    requests = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    spec["resources"] = {**resources, "requests": requests}
    return _digest({field: spec.get(field) for field in HASHED_FIELDS})


def sandbox_hash(pod: Pod) -> str:
    """A hash of what the sandbox holds: the pod's network namespace choice and hostname."""
    return _digest({"hostNetwork": bool(pod.spec.host_network), "hostname": _hostname(pod)})


def _hostname(pod: Pod) -> str:
    return (pod.spec.hostname or pod.metadata.name or "")[:63]


def sandbox_config(pod: Pod) -> SandboxConfig:
    return SandboxConfig(
        pod=pod_ref(pod),
        host_network=bool(pod.spec.host_network),
        hostname=_hostname(pod),
        labels=dict(pod.metadata.labels or {}),
        spec_hash=sandbox_hash(pod),
    )


def milli_cpu_to_shares(milli_cpu: int) -> int:
    """kubelet's MilliCPUToShares: CPU shares for a CPU request (no request -> the minimum, 2)."""
    if milli_cpu == 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli_cpu * SHARES_PER_CPU // 1000))


def volume_dir(data_dir: Path, uid: str, volume: str) -> Path:
    """Where an emptyDir volume of a pod lives on the node."""
    return data_dir / "pods" / uid / "volumes" / volume


# A `$(VAR)` reference, or `$$` (an escaped `$`), in env values, command and args.
_REFERENCE = re.compile(r"\$(?:\$|\(([^)]*)\))")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, undefined references are kept
    verbatim, and ``$$`` reads as ``$``."""
    return _REFERENCE.sub(lambda m: "$" if m.group(1) is None else env.get(m.group(1), m.group(0)), text)


def _env(container: Container) -> dict[str, str]:
    if container.env_from:
        source = container.env_from[0]
        kind = "configMapRef" if source.config_map_ref else "secretRef"
        raise ConfigError(f"envFrom ({kind}) is not supported yet")
    env: dict[str, str] = {}
    for var in container.env or []:
        if var.value_from is not None:
            kind = next(iter(var.value_from.to_dict()), "valueFrom")
            raise ConfigError(f"env {var.name}: valueFrom ({kind}) is not supported yet")
        env[var.name] = expand(var.value or "", env)  # may refer to the variables defined before it
    return env


def _user(pod: Pod, container: Container) -> str | None:
    pod_ctx, ctx = pod.spec.security_context, container.security_context
    uid = ctx.run_as_user if ctx and ctx.run_as_user is not None else (pod_ctx.run_as_user if pod_ctx else None)
    gid = ctx.run_as_group if ctx and ctx.run_as_group is not None else (pod_ctx.run_as_group if pod_ctx else None)
    if uid is None:
        return None
    return f"{uid}:{gid}" if gid is not None else str(uid)


def _volume_source(pod: Pod, volume: Volume, data_dir: Path) -> Path:
    if volume.empty_dir is not None:
        return volume_dir(data_dir, pod.metadata.uid or "", volume.name)
    if volume.host_path is not None:
        return Path(volume.host_path.path)
    raise ConfigError(
        f'volume "{volume.name}": {", ".join(volume.sources) or "its source"} volumes are not supported yet'
    )


def _mounts(pod: Pod, container: Container, data_dir: Path) -> list[Mount]:
    volumes = {volume.name: volume for volume in pod.spec.volumes or []}
    mounts = []
    for mount in container.volume_mounts or []:
        volume = volumes.get(mount.name)
        if volume is None:
            raise ConfigError(f'volume "{mount.name}" mounted at {mount.mount_path} is not in spec.volumes')
        source = _volume_source(pod, volume, data_dir)
        if mount.sub_path:
            if ".." in PurePosixPath(mount.sub_path).parts or mount.sub_path.startswith("/"):
                raise ConfigError(
                    f'volume "{mount.name}": subPath {mount.sub_path!r} must be a relative path inside it'
                )
            source = source / mount.sub_path
        mounts.append(Mount(str(source), mount.mount_path, bool(mount.read_only)))
    return mounts


def host_dirs(pod: Pod, data_dir: Path) -> list[Path]:
    """The directories to make before the pod's containers start: its emptyDirs and their subPaths,
    and hostPaths of type ``DirectoryOrCreate``."""
    dirs = [volume_dir(data_dir, pod.metadata.uid or "", v.name) for v in pod.spec.volumes or [] if v.empty_dir]
    dirs += [Path(v.host_path.path) for v in pod.spec.volumes or []
             if v.host_path and v.host_path.type == "DirectoryOrCreate"]  # fmt: skip
    empty = {v.name for v in pod.spec.volumes or [] if v.empty_dir is not None}
    for container in pod.spec.all_containers:
        for mount in container.volume_mounts or []:
            if mount.name in empty and mount.sub_path and ".." not in PurePosixPath(mount.sub_path).parts:
                dirs.append(volume_dir(data_dir, pod.metadata.uid or "", mount.name) / mount.sub_path)
    return dirs


def container_config(
    pod: Pod, container: Container, data_dir: Path, restart_count: int = 0, is_init: bool = False
) -> ContainerConfig:
    """The runtime config of one container; raises ConfigError for what is not supported yet."""
    resources = container.resources
    limits = (resources.limits if resources else None) or {}
    requests = {**limits, **((resources.requests if resources else None) or {})}
    ctx = container.security_context
    env = _env(container)
    return ContainerConfig(
        name=container.name,
        image=container.image or "",
        command=[expand(part, env) for part in container.command or []],
        args=[expand(part, env) for part in container.args or []],
        env=env,
        working_dir=container.working_dir or None,
        cpu_limit_nano=cpu_to_nanocpus(limits["cpu"]) if "cpu" in limits else None,
        cpu_shares=milli_cpu_to_shares(cpu_to_millicores(requests["cpu"]) if "cpu" in requests else 0),
        memory_limit_bytes=to_bytes(limits["memory"]) if "memory" in limits else None,
        memory_request_bytes=to_bytes(requests["memory"]) if "memory" in requests else None,
        user=_user(pod, container),
        privileged=bool(ctx and ctx.privileged),
        mounts=_mounts(pod, container, data_dir),
        tty=bool(container.tty),
        stdin=bool(container.stdin),
        restart_count=restart_count,
        spec_hash=container_hash(container),
        is_init=is_init,
    )
