"""Mounts on the host: a tmpfs for secret, projected and ``medium: Memory`` volumes, a bind mount of an opened
descriptor for each subPath and hostPath mount, and unmounting everything under a pod's directory before it is removed.

``HostMounter`` calls mount(8)/umount(8) (the agent runs as root, in the host's mount namespace, as dockerd does),
and binds a descriptor with the mount system calls (``open_tree`` clones what the descriptor refers to, ``move_mount``
attaches the clone): no path is walked again between the open that checked it and the bind, where ``mount --bind
/proc/self/fd/N`` would canonicalize the descriptor back into a path and walk it (CVE-2017-1002101's race). On a
kernel without them (before 5.2; 5.12 for a read-only bind) it runs ``mount --no-canonicalize --bind`` on the
descriptor. ``FakeMounter`` records what would be mounted, for unit tests.
"""
from __future__ import annotations

import ctypes
import errno
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

    def bind_fd(self, fd: int, target: Path, *, recursive: bool = False, read_only: bool = False) -> None:
        """Bind-mount what descriptor ``fd`` refers to at ``target`` (which exists, of the same kind); with the mounts
        below it when ``recursive``; read-only (all of it) when ``read_only``."""

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


# The new mount API (linux/mount.h, linux/fcntl.h); since Linux 5.1 its system calls have one number on every
# architecture.
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH, AT_RECURSIVE = 0x1000, 0x8000
MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 0x04, 0x40
MOUNT_ATTR_RDONLY = 0x1


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def _syscall(number: int, *args: object) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def bind_descriptor(fd: int, target: Path, *, recursive: bool = False, read_only: bool = False) -> None:
    """Bind what ``fd`` refers to at ``target`` with open_tree/move_mount: the mount is cloned from the descriptor
    itself, and ``target`` (opened without following a symlink) receives it. OSError(ENOSYS) on an older kernel."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    tree = _syscall(SYS_OPEN_TREE, ctypes.c_int(fd), ctypes.c_char_p(b""), ctypes.c_uint(flags))
    try:
        if read_only:
            attr = MountAttr(attr_set=MOUNT_ATTR_RDONLY)
            _syscall(SYS_MOUNT_SETATTR, ctypes.c_int(tree), ctypes.c_char_p(b""),
                     ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE), ctypes.byref(attr),
                     ctypes.c_size_t(ctypes.sizeof(attr)))
        where = os.open(target, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _syscall(SYS_MOVE_MOUNT, ctypes.c_int(tree), ctypes.c_char_p(b""), ctypes.c_int(where),
                     ctypes.c_char_p(b""), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
        finally:
            os.close(where)
    finally:
        os.close(tree)


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

    def bind_fd(self, fd: int, target: Path, *, recursive: bool = False, read_only: bool = False) -> None:
        try:
            bind_descriptor(fd, target, recursive=recursive, read_only=read_only)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise MountError(f"bind mount at {target} failed: {exc.strerror}") from None
            self._bind_with_mount(fd, target, recursive, read_only)

    def _bind_with_mount(self, fd: int, target: Path, recursive: bool, read_only: bool) -> None:
        # The child inherits the descriptor under the same number: /proc/self/fd/<fd> there is what we opened, and
        # --no-canonicalize hands that magic link to mount(2) as it is instead of the path it reads back.
        source = f"/proc/self/fd/{fd}"
        self._run(["mount", "--no-canonicalize", "--rbind" if recursive else "--bind", source, str(target)],
                  pass_fds=(fd,))
        if read_only:
            self._run(["mount", "--no-canonicalize", "-o", "remount,bind,ro", str(target)])

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
        self.read_only: dict[Path, bool] = {}

    def mount_tmpfs(self, path: Path, size_bytes: int | None, mode: int) -> None:
        self.calls.append(("mount_tmpfs", str(path)))
        self.mounts[Path(path)] = "tmpfs"
        self.sizes[Path(path)] = size_bytes

    def resize_tmpfs(self, path: Path, size_bytes: int) -> None:
        self.calls.append(("resize_tmpfs", str(path)))
        self.sizes[Path(path)] = size_bytes

    def bind_fd(self, fd: int, target: Path, *, recursive: bool = False, read_only: bool = False) -> None:
        self.calls.append(("bind_fd", str(target)))
        self.read_only[Path(target)] = read_only
        self.mounts[Path(target)] = os.readlink(f"/proc/self/fd/{fd}")

    def unmount(self, path: Path) -> None:
        self.calls.append(("unmount", str(path)))
        if Path(path) in self.fail_unmount:
            raise MountError(f"umount {path} failed: target is busy")
        self.mounts.pop(Path(path), None)

    def mounts_under(self, path: Path) -> list[Path]:
        return sorted((p for p in self.mounts if is_within(p, path)), key=lambda p: len(p.parts), reverse=True)
