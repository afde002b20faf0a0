"""Pod spec -> runtime configs (kubelet's generateContainerConfig, makeEnvironmentVariables and makeMounts,
trimmed), and spec hashes.

Environment: ``env`` (values, ``valueFrom`` configMapKeyRef/secretKeyRef/fieldRef/resourceFieldRef) and ``envFrom``
(with ``prefix``) are resolved through ``Sources`` (the MetaClient) and the node's ``PodFacts``. Mounts come from
the volumes the VolumeManager set up (``volumes.manager``), subPaths bound by it. What cannot be had (a missing
configmap, secret or key that is not optional, an unsafe subPath, an unsupported source) raises ``ConfigError``: the
sync shows it as the container's ``CreateContainerConfigError`` and looks again later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeworkers.k8s.pod import Container, EphemeralContainer, KeySelector, Pod
from edgeworkers.k8s.quantity import cpu_to_millicores, cpu_to_nanocpus, to_bytes
from edgeworkers.pods import qos
from edgeworkers.pods.hostports import pod_port_mappings
from edgeworkers.pods.securitycontext import SecurityError, container_security, pod_sysctls
from edgeworkers.runtime.types import Container as RuntimeContainer
from edgeworkers.runtime.types import ContainerConfig, ContainerState, Mount, PodRef, SandboxConfig
from edgeworkers.volumes.builders import CONFIGMAP, SECRET, NoSources, Sources, configmap_values, fetch, secret_values
from edgeworkers.volumes.downward import FieldError, PodFacts, field_value, resource_value
from edgeworkers.volumes.errors import ConfigSourceError
from edgeworkers.volumes.manager import ReadyVolume
from edgeworkers.volumes.paths import relative_parts, volume_dir

log = logging.getLogger(__name__)

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
    """A hash of what the sandbox holds: the pod's network namespace choice, hostname and hostPorts (none: the hash
    of a pod without hostPorts is what it was before they were published)."""
    ports = [[m.container_port, m.host_port, m.protocol, m.host_ip] for m in pod_port_mappings(pod)]
    return _digest({"hostNetwork": bool(pod.spec.host_network), "hostIPC": bool(pod.spec.host_ipc) or None,
                    "hostname": _hostname(pod), "hostPorts": ports, "sysctls": pod_sysctls(pod)})


def _hostname(pod: Pod) -> str:
    return (pod.spec.hostname or pod.metadata.name or "")[:63]


def sandbox_config(pod: Pod) -> SandboxConfig:
    return SandboxConfig(
        pod=pod_ref(pod),
        host_network=bool(pod.spec.host_network),
        host_ipc=bool(pod.spec.host_ipc),
        hostname=_hostname(pod),
        labels=dict(pod.metadata.labels or {}),
        spec_hash=sandbox_hash(pod),
        port_mappings=pod_port_mappings(pod),
        oom_score_adj=qos.SANDBOX,
        sysctls=pod_sysctls(pod),
    )


def milli_cpu_to_shares(milli_cpu: int) -> int:
    """kubelet's MilliCPUToShares: CPU shares for a CPU request (no request -> the minimum, 2)."""
    if milli_cpu == 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli_cpu * SHARES_PER_CPU // 1000))


# A `$(VAR)` reference, or `$$` (an escaped `$`), in env values, command and args.
_REFERENCE = re.compile(r"\$(?:\$|\(([^)]*)\))")
# kubelet's IsEnvVarName (C identifiers plus '-' and '.'): envFrom keys that are not are skipped.
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, undefined references are kept
    verbatim, and ``$$`` reads as ``$``."""
    return _REFERENCE.sub(lambda m: "$" if m.group(1) is None else env.get(m.group(1), m.group(0)), text)


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _key_ref(sources: Sources, kind: str, namespace: str, ref: KeySelector) -> str | None:
    """The value of a configMapKeyRef / secretKeyRef; None when it is optional and missing (the variable is unset)."""
    obj = fetch(sources, kind, namespace, ref.name or "", bool(ref.optional))
    values = configmap_values(obj) if kind == CONFIGMAP else secret_values(obj)
    if ref.key in values:
        return _text(values[ref.key])
    if obj is None or ref.optional:
        return None
    label = "ConfigMap" if kind == CONFIGMAP else "Secret"
    raise ConfigError(f"couldn't find key {ref.key} in {label} {namespace}/{ref.name}")


def container_env(
    pod: Pod, container: Container, sources: Sources | None = None, facts: PodFacts | None = None
) -> tuple[dict[str, str], list[str]]:
    """The container's environment as kubelet's makeEnvironmentVariables makes it, and the envFrom keys skipped
    because they are not valid variable names.

    Order: every ``envFrom`` source in turn (later ones win, each key with its ``prefix``), then ``env`` in order
    (later ones win); a plain ``value`` is ``$(VAR)``-expanded with what is defined before it (envFrom included), a
    ``valueFrom`` value never is. A missing configmap, secret or key that is not optional raises ConfigError naming
    it; an optional one leaves its variables unset.
    """
    sources = sources or NoSources()
    facts = facts or PodFacts(node_cpu_millis=0, node_memory_bytes=0)
    namespace = pod.metadata.namespace or "default"
    env: dict[str, str] = {}
    skipped: list[str] = []
    try:
        for source in container.env_from or []:
            ref, kind = (source.config_map_ref, CONFIGMAP) if source.config_map_ref else (source.secret_ref, SECRET)
            if ref is None:
                continue
            obj = fetch(sources, kind, namespace, ref.name or "", bool(ref.optional))
            values = configmap_values(obj) if kind == CONFIGMAP else secret_values(obj)
            for key, value in values.items():
                name = (source.prefix or "") + key
                if _ENV_NAME.fullmatch(name):
                    env[name] = _text(value)
                else:
                    skipped.append(name)
        for var in container.env or []:
            source = var.value_from
            if source is None:
                env[var.name] = expand(var.value or "", env)  # may refer to the variables defined before it
                continue
            value: str | None
            if source.config_map_key_ref is not None:
                value = _key_ref(sources, CONFIGMAP, namespace, source.config_map_key_ref)
            elif source.secret_key_ref is not None:
                value = _key_ref(sources, SECRET, namespace, source.secret_key_ref)
            elif source.field_ref is not None:
                value = field_value(pod, source.field_ref.field_path, facts)
            elif source.resource_field_ref is not None:
                ref = source.resource_field_ref
                value = resource_value(pod, ref.container_name or container.name, ref.resource, ref.divisor, facts)
            else:
                kind = next(iter(source.to_dict()), "valueFrom")
                raise ConfigError(f"env {var.name}: valueFrom ({kind}) is not supported on this node")
            if value is not None:
                env[var.name] = value
    except ConfigSourceError as exc:
        raise ConfigError(str(exc)) from None
    except FieldError as exc:
        raise ConfigError(f"env: {exc}") from None
    return env, skipped


def _user(pod: Pod, container: Container) -> str | None:
    pod_ctx, ctx = pod.spec.security_context, container.security_context
    uid = ctx.run_as_user if ctx and ctx.run_as_user is not None else (pod_ctx.run_as_user if pod_ctx else None)
    gid = ctx.run_as_group if ctx and ctx.run_as_group is not None else (pod_ctx.run_as_group if pod_ctx else None)
    if uid is None:
        return None
    return f"{uid}:{gid}" if gid is not None else str(uid)


def lexical_volumes(pod: Pod, data_dir: Path) -> dict[str, ReadyVolume]:
    """Where emptyDir and hostPath volumes are, without touching the disk (what ``container_config`` uses when the
    sync passes no volumes set up by the VolumeManager)."""
    ready = {}
    for volume in pod.spec.volumes or []:
        if volume.empty_dir is not None:
            ready[volume.name] = ReadyVolume(volume_dir(data_dir, pod.metadata.uid or "", volume.name), creatable=True)
        elif volume.host_path is not None:
            ready[volume.name] = ReadyVolume(Path(volume.host_path.path), host=True)
    return ready


# (container name, index of the mount, volume name, the volume, subPath, read-only) -> the host path to give Docker.
SubPathBinder = Callable[[str, int, str, ReadyVolume, str, bool], Path]


def _lexical_subpath(container: str, index: int, name: str, ready: ReadyVolume, sub_path: str,
                     read_only: bool) -> Path:
    return ready.path.joinpath(*relative_parts(sub_path, f'volume "{name}": subPath')) if sub_path else ready.path


def _mounts(
    pod: Pod, container: Container, volumes: dict[str, ReadyVolume], env: dict[str, str], bind: SubPathBinder
) -> list[Mount]:
    declared = {volume.name: volume for volume in pod.spec.volumes or []}
    mounts = []
    for index, mount in enumerate(container.volume_mounts or []):
        if mount.name not in declared:
            raise ConfigError(f'volume "{mount.name}" mounted at {mount.mount_path} is not in spec.volumes')
        ready = volumes.get(mount.name)
        if ready is None:
            volume = declared[mount.name]
            raise ConfigError(
                f'volume "{volume.name}": {", ".join(volume.sources) or "its source"} volumes are not supported yet'
            )
        sub_path = mount.sub_path or ""
        if mount.sub_path_expr:
            sub_path = expand(mount.sub_path_expr, env)
        read_only = bool(mount.read_only) or ready.read_only
        try:  # a hostPath is always bound, so Docker is never given a path a pod can change
            source = bind(container.name, index, mount.name, ready, sub_path, read_only) \
                if sub_path or ready.host else ready.path
        except ConfigSourceError as exc:
            raise ConfigError(str(exc)) from None
        mounts.append(Mount(str(source), mount.mount_path, read_only))
    return mounts


def container_config(
    pod: Pod,
    container: Container,
    data_dir: Path,
    restart_count: int = 0,
    is_init: bool = False,
    *,
    sources: Sources | None = None,
    facts: PodFacts | None = None,
    volumes: dict[str, ReadyVolume] | None = None,
    bind_subpath: SubPathBinder | None = None,
    warn: Callable[[str, str], None] | None = None,
    pids_limit: int | None = None,
    image_user: Callable[[], str] | None = None,
    etc_files: Sequence[Mount] = (),
    apparmor: bool = False,
) -> ContainerConfig:
    """The runtime config of one container; raises ConfigError for what cannot be had now.

    ``volumes``: the pod's volumes as the VolumeManager set them up (default: emptyDir and hostPath where they
    would be, nothing else); ``bind_subpath``: how a subPath or a hostPath becomes the host path given to Docker
    (default: a lexical join); ``warn(reason, message)``: records what was skipped (kubelet's events); ``pids_limit``:
    the node's PID limit (None: none). Its ``oom_score_adj`` is kubelet's (``pods.qos``) for the node's memory in
    ``facts``. Its ``security`` comes from ``pods.securitycontext``: ``image_user`` gives the image's USER when
    ``runAsNonRoot`` needs it (default: unknown, refused as root), ``apparmor`` whether the host enforces AppArmor.
    ``etc_files``: the pod's resolv.conf and hosts mounts (``pods.etcfiles``), unless the container mounts a volume
    there.
    """
    resources = container.resources
    limits = (resources.limits if resources else None) or {}
    requests = {**limits, **((resources.requests if resources else None) or {})}
    ctx = container.security_context
    env, skipped = container_env(pod, container, sources, facts)
    if skipped:  # kubelet records an InvalidEnvironmentVariableNames event; key names only, never values
        keys = ", ".join(sorted(skipped))
        log.warning("pod %s container %s: envFrom keys skipped (not valid variable names): %s", pod.key,
                    container.name, keys)
        if warn is not None:
            warn("InvalidEnvironmentVariableNames", f"Keys [{keys}] from the EnvFrom of container {container.name} "
                 "were skipped since they are considered invalid environment variable names.")
    try:
        if volumes is None:
            volumes = lexical_volumes(pod, data_dir)
        mounts = _mounts(pod, container, volumes, env, bind_subpath or _lexical_subpath)
        security = container_security(pod, container, data_dir, image_user or str, apparmor)
    except (ConfigSourceError, SecurityError) as exc:
        raise ConfigError(str(exc)) from None
    taken = {mount.container_path for mount in mounts}
    mounts += [mount for mount in etc_files if mount.container_path not in taken]
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
        cap_add=list((ctx and ctx.capabilities and ctx.capabilities.add) or []),
        cap_drop=list((ctx and ctx.capabilities and ctx.capabilities.drop) or []),
        host_pid=bool(pod.spec.host_pid),
        host_ipc=bool(pod.spec.host_ipc),
        oom_score_adj=qos.oom_score_adj(pod, container, facts.node_memory_bytes if facts else 0),
        pids_limit=pids_limit,
        mounts=mounts,
        security=security,
        tty=bool(container.tty),
        stdin=bool(container.stdin),
        restart_count=restart_count,
        spec_hash=container_hash(container),
        is_init=is_init,
    )


def ephemeral_config(config: ContainerConfig, spec: EphemeralContainer,
                     containers: list[RuntimeContainer]) -> ContainerConfig:
    """An ephemeral container's config: labelled as one, in the PID namespace of its ``targetContainerName`` (the
    running instance among the pod's ``containers``) when it names one; ConfigError when that one is not running."""
    target = spec.target_container_name
    if not target:
        return replace(config, is_ephemeral=True)
    running = [c for c in containers if c.name == target and not c.is_sandbox and not c.is_ephemeral
               and c.state == ContainerState.RUNNING]
    if not running:
        raise ConfigError(f"unable to find target container {target}")
    return replace(config, is_ephemeral=True, pid_target=running[0].id)
