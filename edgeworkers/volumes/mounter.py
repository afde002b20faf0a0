"""Mounts on the host: a tmpfs for secret, projected and ``medium: Memory`` volumes, a bind mount of an opened
descriptor for each subPath, and unmounting everything under a pod's directory before it is removed.

``HostMounter`` calls mount(8)/umount(8) (the agent runs as root, in the host's mount namespace, as dockerd does);
``FakeMounter`` records what would be mounted, for unit tests.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

from edgeworkers.volumes.paths import is_within


class MountError(OSError):
    """mount(8) or umount(8) failed; the message is the command's own."""


class Mounter(Protocol):
    def mount_tmpfs(self, path: Path, size_bytes: int | None, mode: int) -> None:
        """Mount a fresh tmpfs at ``path`` (an existing directory)."""

    def resize_tmpfs(self, path: Path, size_bytes: int) -> None:
        """Grow or shrink the tmpfs at ``path`` (its files stay)."""

    def bind_fd(self, fd: int, target: Path) -> None:
        """Bind-mount what descriptor ``fd`` refers to at ``target`` (which exists, of the same kind)."""

    def unmount(self, path: Path) -> None: ...

    def mounts_under(self, path: Path) -> list[Path]:
        """The mount points at or below ``path``, deepest first."""


def _unescape(field: str) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Path]:
    """The mount points listed in a mountinfo file, in order."""
    points = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(Path(_unescape(fields[4])))
    return points


class HostMounter:
    def __init__(self, mountinfo: Path = Path("/proc/self/mountinfo")) -> None:
        self._mountinfo = mountinfo

    def _run(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, pass_fds=pass_fds, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MountError(f"{' '.join(argv[:2])} failed: {exc}") from None
        if result.returncode != 0:
            raise MountError(f"{' '.join(argv[:2])} failed: {(result.stderr or result.stdout).strip()}")

    def mount_tmpfs(self, path: Path, size_bytes: int | None, mode: int) -> None:
        options = f"mode={mode:o},nosuid,nodev" + (f",size={size_bytes}" if size_bytes else "")
        self._run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)])

    def resize_tmpfs(self, path: Path, size_bytes: int) -> None:
        self._run(["mount", "-o", f"remount,size={size_bytes}", str(path)])

    def bind_fd(self, fd: int, target: Path) -> None:
        # The child inherits the descriptor under the same number: /proc/self/fd/<fd> there is what we opened.
        self._run(["mount", "--bind", f"/proc/self/fd/{fd}", str(target)], pass_fds=(fd,))

    def unmount(self, path: Path) -> None:
        self._run(["umount", str(path)])

    def mounts_under(self, path: Path) -> list[Path]:
        points = parse_mountinfo(self._mountinfo.read_text())
        real = os.path.realpath(path)
        under = {p for p in points if is_within(p, real)}
        return sorted(under, key=lambda p: len(p.parts), reverse=True)


class FakeMounter:
    """Records mounts; ``mounts_under`` answers from them. A bind of a descriptor just notes its target."""

    def __init__(self) -> None:
        self.mounts: dict[Path, str] = {}
        self.sizes: dict[Path, int | None] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_unmount: set[Path] = set()

    def mount_tmpfs(self, path: Path, size_bytes: int | None, mode: int) -> None:
        self.calls.append(("mount_tmpfs", str(path)))
        self.mounts[Path(path)] = "tmpfs"
        self.sizes[Path(path)] = size_bytes

    def resize_tmpfs(self, path: Path, size_bytes: int) -> None:
        self.calls.append(("resize_tmpfs", str(path)))
        self.sizes[Path(path)] = size_bytes

    def bind_fd(self, fd: int, target: Path) -> None:
        self.calls.append(("bind_fd", str(target)))
        self.mounts[Path(target)] = os.readlink(f"/proc/self/fd/{fd}")

    def unmount(self, path: Path) -> None:
        self.calls.append(("unmount", str(path)))
        if Path(path) in self.fail_unmount:
            raise MountError(f"umount {path} failed: target is busy")
        self.mounts.pop(Path(path), None)

    def mounts_under(self, path: Path) -> list[Path]:
        return sorted((p for p in self.mounts if is_within(p, path)), key=lambda p: len(p.parts), reverse=True)
