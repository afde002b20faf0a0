"""Settings for every edgeworkers process, in one place.

Each setting is an environment variable ``EDGEWORKERS_<NAME>`` (any case) with edged's / kubelet's default; a list
setting's value is JSON. ``Settings(name=value)`` overrides the environment.

The environment is read here rather than by pydantic-settings: that library and what it imports (python-dotenv, its
sources for CLIs and clouds) cost 3.5 MB of PSS in every edge process (ops/bench/footprint.py), for the dozen lines
below.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "EDGEWORKERS_"
_JSON_TYPES = (list, dict, set, tuple)


def _is_json(annotation: Any) -> bool:
    """Whether a field of this type is given as JSON in the environment (a list, a dict, ...; possibly optional)."""
    if typing.get_origin(annotation) in _JSON_TYPES or annotation in _JSON_TYPES:
        return True
    return any(_is_json(arg) for arg in typing.get_args(annotation))


def environ_values(fields: dict[str, Any], environ: typing.Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The values that ``environ`` sets for ``fields`` (name: annotation), by ``EDGEWORKERS_<NAME>`` in any case;
    a JSON field's value decoded (ValueError naming the variable, not its value, if it is not JSON)."""
    by_name = {key.upper(): value for key, value in environ.items()}
    values: dict[str, Any] = {}
    for name, annotation in fields.items():
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable not in by_name:
            continue
        raw = by_name[variable]
        if _is_json(annotation):
            try:
                values[name] = json.loads(raw)
            except ValueError:
                raise ValueError(f"{variable} is not valid JSON") from None
        else:
            values[name] = raw
    return values


class AllowedHostPath(BaseModel):
    """One entry of ``EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS`` (PodSecurityPolicy's ``AllowedHostPath``): hostPaths
    at or below ``pathPrefix`` (whole path components: ``/var/log`` is not ``/var/logger``) may be mounted; only
    read-only when ``readOnly``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    path_prefix: str = Field(alias="pathPrefix")
    read_only: bool = Field(default=False, alias="readOnly")

    @field_validator("path_prefix")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\0" in value or ".." in value.split("/"):
            raise ValueError("pathPrefix must be an absolute path without '..'")
        return value


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def __init__(self, **values: Any) -> None:
        fields = {name: info.annotation for name, info in type(self).model_fields.items()}
        super().__init__(**{**environ_values(fields), **values})

    node_name: str = Field(default_factory=lambda: socket.gethostname().lower())
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A Redis call of a worker (or its broker) gives up after this long: a stalled Redis fails the task (retried),
    # never hangs a worker thread or the pod lock's renewer.
    redis_socket_timeout_s: float = 10.0
    # The agent Redis's password (requirepass), a 0600 file made by ops/services on its first start; "" for none.
    # Read by edgeworkers/redisconn.py, which builds every Redis client: the password never goes into a URL or a log.
    redis_password_file: str = "/var/lib/edgeworkers/secrets/redis-password"
    docker_host: str = "unix:///var/run/docker.sock"
    # The node's heartbeat asks the container engine's status (version, data root) with this timeout: a hung dockerd
    # (it accepts connections, never answers) makes the node Ready=False within seconds, as kubelet's runtime status
    # check does, rather than silent until the cloud marks it Unknown. Other calls keep their long timeouts.
    runtime_status_timeout_s: float = Field(default=5.0, gt=0)
    data_dir: Path = Path("/var/lib/edgeworkers")

    # Dramatiq workers: one process (run in place, without the `dramatiq` master) with 8 threads, as fast on a small
    # edge as more processes (ops/bench/scaling.py: Docker stops scaling at about 8 concurrent calls on 2 cores) and
    # about 55 MB of PSS lighter per process spared (ops/bench/footprint.py); a bigger edge may run more.
    worker_processes: int = 1
    worker_threads: int = 8
    # Seconds before Dramatiq's Redis broker redelivers the tasks of a dead worker.
    broker_heartbeat_timeout_ms: int = 15_000
    # Transient faults (dockerd or Redis away) are retried for about a day at the back-off cap: an edge
    # outlasts long outages, and every retry reconciles to the desired state, so retrying is always safe.
    task_max_retries: int = 1440
    task_min_backoff_ms: int = 1_000
    task_max_backoff_ms: int = 60_000
    task_time_limit_ms: int = 10 * 60_000

    # Pods (kubelet defaults).
    sandbox_image: str = "edgeworkers/pause:latest"
    default_grace_period_s: int = 30
    backoff_initial_s: float = 10.0
    backoff_max_s: float = 300.0
    backoff_reset_s: float = 600.0
    # The per-pod lock's lease, renewed while a sync runs: a SIGKILLed worker's lock clears this soon.
    pod_lock_lease_s: float = 15.0
    # Processes (threads included) each container of a pod may hold at once (kubelet's podPidsLimit, set as Docker's
    # pids limit of each container); -1 or 0: no limit (kubelet's default). 4096, OpenShift's default podPidsLimit:
    # a fork bomb in one pod then takes an eighth of the kernel's default pid_max (32768), never the whole node.
    pod_pids_limit: int = 4096

    # Cloud API (process `cloud`).
    cloud_host: str = "127.0.0.1"
    cloud_port: int = 6443
    cloud_data_dir: Path = Path("/var/lib/edgeworkers/cloud")
    # The cloud API the node talks to; unset: the embedded cloud's credentials in cloud_data_dir.
    kubeconfig: Path | None = None
    # The cloud's node lifecycle controller (kube-controller-manager's --node-monitor-grace-period and
    # --node-monitor-period): a node silent this long turns Ready=Unknown; it looks this often.
    node_monitor_grace_period_s: float = 40.0
    node_monitor_period_s: float = 5.0
    # The pace of the cloud's controllers' writes, one token bucket for all of them (kube-controller-manager's
    # --kube-api-qps and --kube-api-burst): a burst of pods is made at most this fast.
    controller_api_qps: float = Field(default=20.0, gt=0)
    controller_api_burst: int = Field(default=30, ge=1)
    # The Services' cluster IPs and node ports (kube-apiserver's --service-cluster-ip-range, at most 2^20 addresses,
    # and --service-node-port-range).
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    # How long the credentials the cloud issues stay valid: nodes' tokens and serving certificates (renewed by the node
    # through the API after 70-90 % of it), the administrator's client certificates.
    credential_lifetime_s: float = Field(default=365 * 86400.0, gt=0)

    # How often the node renews its lease and posts its status (kubelet's nodeStatusUpdateFrequency): keep it well
    # under the cloud's node_monitor_grace_period_s, or a healthy node turns Unknown between two heartbeats.
    node_status_update_frequency_s: float = 10.0

    # The node's own kubelet-style endpoint (logs), reported in status.daemonEndpoints.
    node_host: str = "127.0.0.1"
    node_port: int = 10350
    # Streams (kubectl exec/attach): one quiet both ways this long is ended (kubelet's streamingConnectionIdleTimeout);
    # the node runs at most this many at once (more answer 429); the cloud gives a node this long to accept one.
    stream_idle_timeout_s: float = 4 * 3600.0
    stream_max_concurrent: int = 64
    stream_connect_timeout_s: float = 10.0

    # Node-level admission (pods/admission.py): what a pod may ask of this node; safe by default (README "Admission").
    # The hostPaths pods may mount, as PodSecurityPolicy's allowedHostPaths (JSON list of {"pathPrefix": "/var/log",
    # "readOnly": true}); none by default.
    admission_allowed_host_paths: list[AllowedHostPath] = Field(default_factory=list)
    # hostPaths that pods may not mount, nor any directory above them, even when allowed above (JSON list); unset: the
    # Docker socket and data root, the agent's data and cloud directories, /etc, /proc, /sys.
    admission_denied_host_paths: list[str] | None = None
    admission_allow_privileged: bool = False
    admission_allowed_capabilities: list[str] = Field(default_factory=list)  # ["*"]: any
    admission_allow_host_network: bool = False
    admission_allow_host_pid: bool = False
    admission_allow_host_ipc: bool = False
    # Security profiles and sysctls (pods/securitycontext.py): a seccomp or AppArmor profile of type Unconfined is
    # refused unless allowed; sysctls outside kube's safe set only as kubelet's --allowed-unsafe-sysctls (JSON list of
    # names or prefixes ending in "*", each namespaced: "net.core.somaxconn", "kernel.msg*").
    admission_allow_unconfined_seccomp: bool = False
    admission_allow_unconfined_apparmor: bool = False
    admission_allowed_unsafe_sysctls: list[str] = Field(default_factory=list)
    # DNS (pods/dns.py, kubelet's --resolv-conf, --cluster-dns, --cluster-domain): no cluster DNS server yet, so
    # ClusterFirst pods get the node's resolv.conf with a MissingClusterDNS warning, as kubelet without one.
    resolv_conf: str = "/etc/resolv.conf"
    cluster_dns: list[str] = Field(default_factory=list)
    cluster_domain: str = "cluster.local"

    # Periodic jobs (process `scheduler`), with kubelet's defaults.
    pleg_relist_period_s: float = 1.0
    # A PLEG that has not relisted for this long makes the node not Ready (kubelet's relistThreshold).
    pleg_relist_threshold_s: float = 180.0
    orphan_cleanup_period_s: float = 60.0
    # Every desired pod is synced this often (kubelet's syncFrequency), each run up to a tenth of it late (jitter): a
    # pod whose task was lost converges within the period.
    sync_frequency_s: float = 60.0
    container_gc_period_s: float = 60.0
    container_gc_min_age_s: float = 0.0
    container_gc_max_per_pod_container: int = 1
    container_gc_max_containers: int = -1  # -1: no limit
    image_gc_period_s: float = 5.0
    image_gc_high_threshold_percent: int = 85  # 100 disables image GC (nodes on poor links)
    image_gc_low_threshold_percent: int = 80
    image_gc_min_age_s: float = 120.0
    # The node's usage (kubectl top) goes to the cloud at most this often (metrics-server's resolution).
    usage_period_s: float = 15.0
    # Events waiting for the cloud, at most (client-go's maxQueuedEvents): past it the oldest are dropped, and counted.
    outbox_max_events: int = Field(default=1000, ge=1)
    # Container logs (kubelet's containerLogMaxSize, containerLogMaxFiles): every container is created with Docker's
    # json-file driver rotating its log at this size and keeping this many files; "0" keeps everything (no rotation).
    container_log_max_size: str = "10Mi"
    container_log_max_files: int = 5
    # Node pressure and eviction (kubelet's eviction manager, edgeworkers/eviction/): kubelet's default hard
    # thresholds, each a quantity ("100Mi") or a percentage of capacity ("10%"), "0" for none. The node reports
    # MemoryPressure, DiskPressure and PIDPressure from them whether or not eviction is on.
    eviction_hard_memory_available: str = "100Mi"
    eviction_hard_nodefs_available: str = "10%"
    eviction_hard_nodefs_inodes_free: str = "5%"
    eviction_hard_imagefs_available: str = "15%"
    eviction_hard_imagefs_inodes_free: str = "5%"
    # kubelet has no default pid.available threshold; this keeps the PIDPressure edgeworkers has always reported.
    eviction_hard_pid_available: str = "10%"
    # Under a threshold, reclaim dead containers and unused images, then evict pods (off: pods are never stopped;
    # the pressure conditions, their taints and the GC jobs still act).
    eviction_enabled: bool = True
    eviction_period_s: float = 10.0  # kubelet's housekeeping interval
    # The agent's own data (the data dir, where Redis keeps its files): under this much free space the node is under
    # disk pressure (reclaim, then evict) and the agent logs and reports it, until the space returns.
    agent_data_reserve: str = "256Mi"
    # Probes run concurrently on this many threads at most.
    prober_workers: int = 16
    # The scheduler's Prometheus endpoint, on 127.0.0.1 only (0: none).
    metrics_port: int = 10356
    # Dramatiq's own Prometheus exposition of the queues, served by the `worker` process on 127.0.0.1 (0: none).
    queue_metrics_port: int = 0

    @field_validator("service_cluster_ip_range")
    @classmethod
    def _service_range(cls, value: str) -> str:
        network = ipaddress.ip_network(value)  # ValueError for a malformed range or one with host bits set
        host_bits = network.max_prefixlen - network.prefixlen
        if not 3 <= host_bits <= 20:
            raise ValueError("the service cluster IP range must hold 8 to 2^20 addresses (a /29 to a /12 in IPv4)")
        return value

    @field_validator("service_node_port_range")
    @classmethod
    def _port_range(cls, value: str) -> str:
        low, _, high = value.partition("-")
        if not (low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high) <= 65535):
            raise ValueError("the service node port range must read LOW-HIGH, within 1-65535")
        return value


@lru_cache
def settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
