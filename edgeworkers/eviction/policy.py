"""kubelet's eviction policy as pure functions (pkg/kubelet/eviction/helpers.go): signals and hard thresholds, the
node conditions and the node-level reclaim each threshold brings, the order pods are evicted in, and the messages.

A signal is observed as (available, capacity): bytes for memory and filesystems, inodes, process ids. A threshold is
a quantity ("100Mi") or a percentage of capacity ("10%"), met while available < its value, as kubelet compares them.
``agentfs.available`` is edgeworkers' own: the free space the agent keeps for its data (Redis's files).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from edgeworkers.config import Settings
from edgeworkers.k8s.quantity import canonical_quantity, to_bytes

MEMORY_AVAILABLE = "memory.available"
NODEFS_AVAILABLE = "nodefs.available"
NODEFS_INODES_FREE = "nodefs.inodesFree"
IMAGEFS_AVAILABLE = "imagefs.available"
IMAGEFS_INODES_FREE = "imagefs.inodesFree"
PID_AVAILABLE = "pid.available"
AGENTFS_AVAILABLE = "agentfs.available"

MEMORY_PRESSURE, DISK_PRESSURE, PID_PRESSURE = "MemoryPressure", "DiskPressure", "PIDPressure"
# The node condition each signal raises, and the resource an eviction for it names (kubelet's signalToNodeCondition
# and signalToResource).
CONDITION = {
    MEMORY_AVAILABLE: MEMORY_PRESSURE, NODEFS_AVAILABLE: DISK_PRESSURE, NODEFS_INODES_FREE: DISK_PRESSURE,
    IMAGEFS_AVAILABLE: DISK_PRESSURE, IMAGEFS_INODES_FREE: DISK_PRESSURE, PID_AVAILABLE: PID_PRESSURE,
    AGENTFS_AVAILABLE: DISK_PRESSURE,
}
RESOURCE = {
    MEMORY_AVAILABLE: "memory", NODEFS_AVAILABLE: "ephemeral-storage", NODEFS_INODES_FREE: "inodes",
    IMAGEFS_AVAILABLE: "ephemeral-storage", IMAGEFS_INODES_FREE: "inodes", PID_AVAILABLE: "pids",
    AGENTFS_AVAILABLE: "ephemeral-storage",
}
# Node-level resources reclaimed before any pod is evicted: disk signals free dead containers and unused images
# (kubelet's reclaim functions when the images share the node's filesystem, as on an edge box); memory and pids none.
CONTAINERS, IMAGES = "containers", "images"
_DISK = (CONTAINERS, IMAGES)
RECLAIM: Mapping[str, tuple[str, ...]] = {
    signal: _DISK if condition == DISK_PRESSURE else () for signal, condition in CONDITION.items()
}
# The threshold ranked for eviction first when several are met: memory, then disk, then pids (kubelet's order).
_PRIORITY = (MEMORY_AVAILABLE, AGENTFS_AVAILABLE, NODEFS_AVAILABLE, NODEFS_INODES_FREE, IMAGEFS_AVAILABLE,
             IMAGEFS_INODES_FREE, PID_AVAILABLE)
_QOS_ORDER = {"BestEffort": 0, "Burstable": 1, "Guaranteed": 2}
_BYTES = {MEMORY_AVAILABLE, NODEFS_AVAILABLE, IMAGEFS_AVAILABLE, AGENTFS_AVAILABLE}


@dataclass(frozen=True)
class Threshold:
    signal: str
    text: str  # as configured: "100Mi" or "10%"
    quantity: int | None = None
    fraction: Decimal | None = None

    def value(self, capacity: int) -> int:
        """The amount of the signal below which the threshold is met."""
        return self.quantity if self.quantity is not None else int(capacity * (self.fraction or 0))


@dataclass(frozen=True)
class Observation:
    available: int
    capacity: int


def parse_threshold(signal: str, text: str) -> Threshold:
    """``"10%"`` or a quantity; ValueError in kubelet's words for anything else (or a percentage above 100)."""
    value = text.strip()
    if value.endswith("%"):
        try:
            percent = Decimal(value[:-1])
        except ArithmeticError:
            percent = Decimal(-1)
        if not 0 <= percent <= 100:
            raise ValueError(f"eviction percentage threshold {signal} must be >= 0% and <= 100%: {text}")
        return Threshold(signal, value, fraction=percent / 100)
    try:
        quantity = to_bytes(value)
    except ValueError:
        quantity = -1
    if quantity < 0:
        raise ValueError(f"eviction threshold {signal} must be a positive quantity or a percentage: {text!r}")
    return Threshold(signal, value, quantity=quantity)


# The setting of each signal's threshold.
SETTINGS = {
    MEMORY_AVAILABLE: "eviction_hard_memory_available",
    NODEFS_AVAILABLE: "eviction_hard_nodefs_available",
    NODEFS_INODES_FREE: "eviction_hard_nodefs_inodes_free",
    IMAGEFS_AVAILABLE: "eviction_hard_imagefs_available",
    IMAGEFS_INODES_FREE: "eviction_hard_imagefs_inodes_free",
    PID_AVAILABLE: "eviction_hard_pid_available",
    AGENTFS_AVAILABLE: "agent_data_reserve",
}


def thresholds_from(config: Settings) -> list[Threshold]:
    """The hard thresholds the settings give (a bad one is a ValueError naming the setting)."""
    thresholds = []
    for signal, field in SETTINGS.items():
        try:
            thresholds.append(parse_threshold(signal, getattr(config, field)))
        except ValueError as exc:
            raise ValueError(f"EDGEWORKERS_{field.upper()}: {exc}") from None
    return thresholds


def thresholds_met(thresholds: Iterable[Threshold], observations: Mapping[str, Observation]) -> list[Threshold]:
    """The thresholds met now, the one to act on first first; a signal not observed meets none."""
    met = [t for t in thresholds if t.signal in observations
           and observations[t.signal].available < t.value(observations[t.signal].capacity)]
    return sorted(met, key=lambda t: _PRIORITY.index(t.signal))


def node_conditions(met: Iterable[Threshold]) -> set[str]:
    """The pressure conditions that are True."""
    return {CONDITION[t.signal] for t in met}


@dataclass(frozen=True)
class PodUsage:
    """A pod as eviction ranks it: its QoS class, priority, and its usage and requests of the resource in short."""

    key: str  # namespace/name
    qos: str
    priority: int
    usage: int
    request: int


def rank(pods: Sequence[PodUsage]) -> list[PodUsage]:
    """The order pods are evicted in: QoS class (BestEffort, Burstable, Guaranteed), then those using more than they
    requested, then the lowest priority, then the most usage above the request (kubelet's rank functions)."""
    return sorted(pods, key=lambda p: (_QOS_ORDER.get(p.qos, 0), p.usage <= p.request, p.priority,
                                       -(p.usage - p.request), p.key))


def format_amount(signal: str, amount: int) -> str:
    """An amount as kubelet prints the quantity: bytes in binary units (``100Mi``, ``3456Ki``), counts as numbers."""
    if signal not in _BYTES or amount < 1024:
        return str(amount)
    return canonical_quantity(f"{amount // 1024}Ki")


def eviction_message(threshold: Threshold, observation: Observation) -> str:
    """The evicted pod's status message, as kubelet words it (nodeLowMessageFmt and thresholdMetMessageFmt)."""
    quantity = threshold.value(observation.capacity)
    return (f"The node was low on resource: {RESOURCE[threshold.signal]}. "
            f"Threshold quantity: {format_amount(threshold.signal, quantity)}, "
            f"available: {format_amount(threshold.signal, max(0, observation.available))}. ")
