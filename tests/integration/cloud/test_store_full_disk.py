"""The real cloud on a small tmpfs filled until a write fails: kubectl is told a clean error, no watcher sees the write,
the next write after space is freed succeeds, and the cloud restarted from that directory never hands out a
resourceVersion again, so a watch resumed from the last one it saw (as the node's bridge resumes) misses nothing."""
from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeworkers.kubeclient import CloudUnavailable
from tests.integration.cloud.conftest import Cloud, running_cloud
from tests.polling import wait_for

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of this test's own, the cloud's data dir; unmounted at the end."""
    mount = tmp_path / "cloud" / "data"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """A file taking every free byte of ``disk``."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


class Watch:
    """The node's own watch client on the configmaps, from ``rv``, its events gathered on a thread."""

    def __init__(self, cloud: Cloud, rv: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        stream = cloud.api.watch(CONFIGMAPS, {"resourceVersion": rv}, timeout_s=120)
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Iterator[tuple[str, dict[str, Any]]]) -> None:
        try:
            for kind, obj in stream:
                if kind != "BOOKMARK":
                    self.events.append((kind, obj))
        except CloudUnavailable:  # the cloud stopped
            pass

    def names(self) -> list[str]:
        return [obj["metadata"]["name"] for _kind, obj in self.events]


def created_rv(cloud: Cloud, name: str) -> str:
    return cloud.api.get(f"{CONFIGMAPS}/{name}")["metadata"]["resourceVersion"]


def test_a_write_the_full_disk_refuses_is_a_clean_error_seen_by_no_one(small_disk: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 600_000)  # more than the WAL holds already: the commit must grow a file
    with running_cloud(small_disk.parent) as cloud:
        cloud.kubectl("create", "configmap", "before", "--from-literal=a=b")
        watch = Watch(cloud, created_rv(cloud, "before"))
        filler = fill(small_disk)

        refused = cloud.kubectl("create", "configmap", "big", f"--from-file=big={big}", check=False)
        assert refused.returncode != 0
        assert "Internal error occurred: the store could not commit the write (SQLITE_FULL)" in refused.stderr
        assert "xxxx" not in refused.stderr
        assert cloud.kubectl("get", "configmap", "big", check=False).returncode != 0  # not there

        filler.unlink()  # space freed: the next write commits
        cloud.kubectl("create", "configmap", "after", "--from-literal=a=b")
        wait_for(lambda: watch.names() == ["after"], 10, "the watch to see the write after the failed one")
        seen = created_rv(cloud, "after")

        cloud.stop()  # the watch breaks; the cloud comes back from the same directory
        cloud.start()
        assert created_rv(cloud, "after") == seen and cloud.kubectl("get", "configmap", "big",
                                                                    check=False).returncode != 0
        resumed = Watch(cloud, seen)  # as the bridge resumes: from the last resourceVersion it saw
        cloud.kubectl("create", "configmap", "again", "--from-literal=a=b")
        wait_for(lambda: resumed.names() == ["again"], 10, "the resumed watch to see the next write")
        assert int(resumed.events[0][1]["metadata"]["resourceVersion"]) > int(seen)
        assert watch.names() == ["after"]
