"""A container's usage from its cgroup files, in each layout Docker makes (cgroup v1/v2, cgroupfs/systemd driver)."""
from pathlib import Path

import pytest

from edgeworkers.runtime.cgroups import read_usage
from edgeworkers.runtime.types import ContainerUsage

ID = "abc123"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("parent", [f"docker/{ID}", f"system.slice/docker-{ID}.scope"])
def test_cgroup_v1(tmp_path: Path, parent: str) -> None:
    write(tmp_path / "cpuacct" / parent / "cpuacct.usage", "123456789\n")
    write(tmp_path / "memory" / parent / "memory.usage_in_bytes", "1048576\n")
    write(tmp_path / "memory" / parent / "memory.stat", "cache 4096\ntotal_inactive_file 8192\ntotal_rss 100\n")
    assert read_usage(ID, tmp_path) == ContainerUsage(123456789, 1048576 - 8192)


@pytest.mark.parametrize("parent", [f"docker/{ID}", f"system.slice/docker-{ID}.scope"])
def test_cgroup_v2(tmp_path: Path, parent: str) -> None:
    write(tmp_path / parent / "cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
    write(tmp_path / parent / "memory.current", "2097152\n")
    write(tmp_path / parent / "memory.stat", "anon 1\ninactive_file 1048576\n")
    assert read_usage(ID, tmp_path) == ContainerUsage(2_500_000, 1048576)


def test_no_cgroup_or_a_malformed_one_is_none_so_docker_is_asked(tmp_path: Path) -> None:
    assert read_usage(ID, tmp_path) is None
    write(tmp_path / f"docker/{ID}" / "memory.current", "x\n")
    write(tmp_path / f"docker/{ID}" / "cpu.stat", "usage_usec 1\n")
    write(tmp_path / f"docker/{ID}" / "memory.stat", "")
    assert read_usage(ID, tmp_path) is None


def test_the_working_set_never_goes_negative(tmp_path: Path) -> None:
    write(tmp_path / f"docker/{ID}" / "cpu.stat", "usage_usec 1\n")
    write(tmp_path / f"docker/{ID}" / "memory.current", "100\n")
    write(tmp_path / f"docker/{ID}" / "memory.stat", "inactive_file 4096\n")
    assert read_usage(ID, tmp_path) == ContainerUsage(1000, 0)
