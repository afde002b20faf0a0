"""Settings for every edgeworkers process, in one place.

Each setting is an environment variable ``EDGEWORKERS_<NAME>`` with edged's / kubelet's default.
"""
from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGEWORKERS_", extra="ignore")

    node_name: str = Field(default_factory=lambda: socket.gethostname().lower())
    redis_url: str = "redis://127.0.0.1:6379/0"
    docker_host: str = "unix:///var/run/docker.sock"
    data_dir: Path = Path("/var/lib/edgeworkers")

    # Dramatiq workers: a bigger edge runs more.
    worker_processes: int = 2
    worker_threads: int = 4
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

    # The node's own kubelet-style endpoint (logs), reported in status.daemonEndpoints.
    node_host: str = "127.0.0.1"
    node_port: int = 10350


@lru_cache
def settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
