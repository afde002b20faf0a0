"""The eviction signals measured on this machine: psutil's memory, ``statvfs`` of the node's filesystem (the data
dir's: pods' volumes and the agent's Redis files) and of Docker's data root (images, containers, their logs), in bytes
and inodes, and the process ids in use against ``pid_max``."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import psutil

from edgeworkers.eviction.policy import (
    AGENTFS_AVAILABLE,
    IMAGEFS_AVAILABLE,
    IMAGEFS_INODES_FREE,
    MEMORY_AVAILABLE,
    NODEFS_AVAILABLE,
    NODEFS_INODES_FREE,
    PID_AVAILABLE,
    Observation,
)
from edgeworkers.runtime.errors import RuntimeFault

log = logging.getLogger(__name__)

PID_MAX = Path("/proc/sys/kernel/pid_max")


def existing_parent(path: Path) -> Path:
    """``path``, or its nearest existing ancestor (the filesystem it will live on)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def filesystem(path: str | Path, available: str, inodes_free: str) -> dict[str, Observation]:
    """Bytes and inodes free (to unprivileged users, as kubelet's ``available``) on ``path``'s filesystem."""
    stats = os.statvfs(path)
    observed = {available: Observation(stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)}
    if stats.f_files:  # some filesystems (btrfs) report no inode limit
        observed[inodes_free] = Observation(stats.f_favail, stats.f_files)
    return observed


def observe(data_dir: Path, image_root: Callable[[], str] | None = None) -> dict[str, Observation]:
    """Every signal measurable now; the image filesystem's only when ``image_root`` (Docker's data root) answers."""
    memory = psutil.virtual_memory()
    observed = {MEMORY_AVAILABLE: Observation(memory.available, memory.total)}
    observed.update(filesystem(existing_parent(data_dir), NODEFS_AVAILABLE, NODEFS_INODES_FREE))
    observed[AGENTFS_AVAILABLE] = observed[NODEFS_AVAILABLE]
    if image_root is not None:
        try:
            observed.update(filesystem(image_root(), IMAGEFS_AVAILABLE, IMAGEFS_INODES_FREE))
        except (RuntimeFault, OSError) as exc:  # the engine away, or its root unreadable: the others still count
            log.info("image filesystem not measured: %s", exc)
    try:
        pid_max = int(PID_MAX.read_text())
    except (OSError, ValueError):
        return observed
    observed[PID_AVAILABLE] = Observation(pid_max - len(psutil.pids()), pid_max)
    return observed
