"""A container's CPU time and memory working set read from its cgroup files, as cAdvisor reads them for kubelet.

Much cheaper than Docker's stats API (measured here: one-shot stats of 10 containers took about 3 s of the engine's
time, these reads take milliseconds). Docker places a container's cgroup by its cgroup driver and version:

- cgroup v1: ``<root>/cpuacct/<parent>/cpuacct.usage`` (ns) and ``<root>/memory/<parent>/memory.usage_in_bytes``
  with ``memory.stat``'s ``total_inactive_file``;
- cgroup v2: ``<root>/<parent>/cpu.stat``'s ``usage_usec`` and ``memory.current`` with ``memory.stat``'s
  ``inactive_file``;

where ``<parent>`` is ``docker/<id>`` (cgroupfs driver) or ``system.slice/docker-<id>.scope`` (systemd driver). The
working set is usage less inactive file pages, as kubelet's eviction and metrics-server count it. None when no layout
matches (a remote engine, another cgroup parent): the caller asks Docker instead.
"""
from __future__ import annotations

from pathlib import Path

from edgeworkers.runtime.types import ContainerUsage

ROOT = Path("/sys/fs/cgroup")


def _parents(container_id: str) -> tuple[str, ...]:
    return (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope")


def _stat(path: Path) -> dict[str, int]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def read_usage(container_id: str, root: Path = ROOT) -> ContainerUsage | None:
    """The container's usage from its cgroup, or None when its cgroup is not found (or is gone meanwhile)."""
    try:
        for parent in _parents(container_id):
            v2 = root / parent
            if (v2 / "memory.current").exists():
                cpu_ns = _stat(v2 / "cpu.stat")["usage_usec"] * 1000
                memory = int((v2 / "memory.current").read_text())
                inactive = _stat(v2 / "memory.stat").get("inactive_file", 0)
                return ContainerUsage(cpu_ns, max(0, memory - inactive))
            cpuacct, memory_dir = root / "cpuacct" / parent, root / "memory" / parent
            if (cpuacct / "cpuacct.usage").exists() and (memory_dir / "memory.usage_in_bytes").exists():
                cpu_ns = int((cpuacct / "cpuacct.usage").read_text())
                memory = int((memory_dir / "memory.usage_in_bytes").read_text())
                inactive = _stat(memory_dir / "memory.stat").get("total_inactive_file", 0)
                return ContainerUsage(cpu_ns, max(0, memory - inactive))
    except (OSError, KeyError, ValueError):
        return None  # removed while being read, or a file not as expected
    return None
