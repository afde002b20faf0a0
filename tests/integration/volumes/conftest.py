"""The loop's fixtures (a cloud, the bridge and a worker for the test's node: ``tests/integration/loop/conftest.py``),
for the volume tests driven by kubectl; and no tmpfs or bind mount outlives a test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgeworkers.config import Settings
from edgeworkers.volumes.mounter import HostMounter, MountError
from tests.integration.loop.conftest import cluster, shared_cloud  # noqa: F401 - fixtures used by this package


@pytest.fixture(autouse=True)
def no_mount_left(settings: Settings) -> Iterator[None]:
    """Unmount what a test's pods left mounted under its data dir (a cluster stopped with its pods still running)."""
    yield
    mounter = HostMounter()
    if settings.data_dir.exists():
        for point in mounter.mounts_under(settings.data_dir):
            try:
                mounter.unmount(point)
            except MountError as exc:
                print(f"cannot unmount {point}: {exc}")
