"""eviction.signals: what this machine measures (psutil, statvfs), and an image root that cannot be read."""
from pathlib import Path

from edgeworkers.eviction.policy import (
    AGENTFS_AVAILABLE,
    IMAGEFS_AVAILABLE,
    MEMORY_AVAILABLE,
    NODEFS_AVAILABLE,
    PID_AVAILABLE,
)
from edgeworkers.eviction.signals import existing_parent, observe


def test_every_signal_is_measured_on_this_machine(tmp_path: Path) -> None:
    observed = observe(tmp_path / "not-yet" / "data", lambda: str(tmp_path))
    for signal in (MEMORY_AVAILABLE, NODEFS_AVAILABLE, AGENTFS_AVAILABLE, IMAGEFS_AVAILABLE, PID_AVAILABLE):
        assert 0 <= observed[signal].available <= observed[signal].capacity, signal
    assert observed[AGENTFS_AVAILABLE] == observed[NODEFS_AVAILABLE]


def test_an_unreadable_image_root_leaves_the_image_signals_out(tmp_path: Path) -> None:
    def away() -> str:
        raise ConnectionError("dockerd away")

    observed = observe(tmp_path, away)
    assert IMAGEFS_AVAILABLE not in observed and MEMORY_AVAILABLE in observed
    assert IMAGEFS_AVAILABLE not in observe(tmp_path)


def test_existing_parent(tmp_path: Path) -> None:
    assert existing_parent(tmp_path / "a" / "b") == tmp_path
    assert existing_parent(tmp_path) == tmp_path
