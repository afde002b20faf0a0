"""Graceful node shutdown, as kubelet's (``GracefulNodeShutdown``): when the machine shuts down, the node's pods are
stopped within a grace period, before Docker and Redis stop; their containers and the desired state are kept, so the
agent starts them again on the next boot, as its start syncs every desired pod.

Under systemd, the unit ``edgeworkers-pods.service`` (``edgeworkers.systemd``) runs this as its ``ExecStop``, ordered
after the agent's and the worker's units (which stop first, so nothing restarts a pod meanwhile) and before
docker's and Redis's; only when the system is shutting down, never when an operator stops or restarts a unit.
"""
from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerState

log = logging.getLogger(__name__)

MAX_THREADS = 16


def stop_pods(runtime: Runtime, grace_period_s: float) -> list[Container]:
    """Stop the node's running containers: the app and init containers at once, each with ``grace_period_s`` (SIGTERM,
    then SIGKILL), then the sandboxes; none is removed. The containers stopped."""
    running = [c for c in runtime.list_containers() if c.state == ContainerState.RUNNING]
    apps = [c for c in running if not c.is_sandbox]
    sandboxes = [c for c in running if c.is_sandbox]
    for group, grace in ((apps, grace_period_s), (sandboxes, 0.0)):
        if not group:
            continue
        with ThreadPoolExecutor(min(MAX_THREADS, len(group))) as pool:
            list(pool.map(lambda c, grace=grace: runtime.stop_container(c.id, grace), group))
    for container in apps:
        log.info("node shutdown: stopped container %s of pod %s", container.name, container.pod.key)
    return running


def shutting_down(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> bool:
    """Whether systemd is shutting the machine down (``systemctl is-system-running`` says ``stopping``)."""
    try:
        state = run(["systemctl", "is-system-running"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return state == "stopping"
