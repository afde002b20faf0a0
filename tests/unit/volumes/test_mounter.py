"""HostMounter's bind of a descriptor: the mount system calls, and on a kernel without them mount(8) told not to
canonicalize the descriptor back into a path (the real binds are in tests/integration/volumes)."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from edgeworkers.volumes import mounter
from edgeworkers.volumes.mounter import HostMounter, MountError


class Recording(HostMounter):
    def __init__(self) -> None:
        super().__init__()
        self.argvs: list[list[str]] = []

    def _run(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        self.argvs.append(argv)


def failing(code: int):
    def bind(*args: object, **kwargs: object) -> None:
        raise OSError(code, "refused")
    return bind


def test_without_the_mount_system_calls_mount_is_told_not_to_canonicalize(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounter, "bind_descriptor", failing(errno.ENOSYS))
    recording = Recording()
    recording.bind_fd(7, Path("/data/pods/u/volume-subpaths/v/app/0"), recursive=True, read_only=True)
    assert recording.argvs == [
        ["mount", "--no-canonicalize", "--rbind", "/proc/self/fd/7", "/data/pods/u/volume-subpaths/v/app/0"],
        ["mount", "--no-canonicalize", "-o", "remount,bind,ro", "/data/pods/u/volume-subpaths/v/app/0"],
    ]


def test_a_refused_bind_is_a_mount_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounter, "bind_descriptor", failing(errno.EPERM))
    recording = Recording()
    with pytest.raises(MountError, match="bind mount at /t failed"):
        recording.bind_fd(7, Path("/t"))
    assert recording.argvs == []
