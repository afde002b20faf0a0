"""A volume's files given to the pod's ``fsGroup``, as kubelet's SetVolumeOwnership does (pkg/volume/volume_linux.go):
every file and directory's group becomes the fsGroup, files gain group read (and write, unless the volume is
read-only), directories also group execute and the setgid bit, so what the containers create there keeps the group.

The walk never follows a symlink (a container may plant one in a volume it writes): it goes by directory descriptors
(``os.fwalk``), a symlink's own group is changed without following it, and every other entry is changed through a
descriptor opened with ``O_PATH | O_NOFOLLOW``, so a name swapped for a symlink meanwhile changes nothing outside.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110


def needs_ownership(root: Path, gid: int, read_only: bool) -> bool:
    """Whether the volume's root lacks the fsGroup's group or mode (kube's OnRootMismatch test): a volume already
    given to the group is not walked again on every sync."""
    info = os.stat(root, follow_symlinks=False)
    wanted = (RO_MASK if read_only else RW_MASK) | EXEC_MASK | stat.S_ISGID
    return info.st_gid != gid or info.st_mode & wanted != wanted


def _change(dir_fd: int, name: str, gid: int, read_only: bool) -> None:
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return  # removed meanwhile
    try:
        info = os.fstat(fd)
        if stat.S_ISLNK(info.st_mode):
            os.chown(name, -1, gid, dir_fd=dir_fd, follow_symlinks=False)
            return
        through = f"/proc/self/fd/{fd}"  # the very inode opened, whatever the name now is
        os.chown(through, -1, gid)
        mask = RO_MASK if read_only else RW_MASK
        if stat.S_ISDIR(info.st_mode):
            mask |= EXEC_MASK | stat.S_ISGID
        os.chmod(through, stat.S_IMODE(info.st_mode) | mask)
    finally:
        os.close(fd)


def set_volume_ownership(root: Path, gid: int, read_only: bool) -> None:
    """Give everything under ``root`` (itself included) to group ``gid``; OSError when it cannot."""
    parent = os.open(root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _change(parent, root.name, gid, read_only)
    finally:
        os.close(parent)
    for _, dirs, files, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirs + files:
            _change(dir_fd, name, gid, read_only)


__all__ = ["needs_ownership", "set_volume_ownership"]
