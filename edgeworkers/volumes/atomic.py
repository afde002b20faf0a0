"""kubelet's atomic writer: a volume's files change all at once, so a reader never sees a half-written set.

Layout of a volume written here (``target``)::

    ..2026_11_29_13_05_00.1234567/   the current files (a fresh directory per change)
    ..data -> ..2026_11_29_13_05_00.1234567
    key -> ..data/key                one symlink per top-level entry of the payload

A change writes a new timestamped directory, points a temporary symlink at it and renames it over ``..data`` (one
``rename(2)``), then adds the new top-level symlinks, removes the ones no longer in the payload and the old directory.
An unchanged payload (same paths, bytes and modes) writes nothing. Paths are checked with ``paths.relative_parts``
before anything is written; everything is created inside a directory this writer just made, never through an entry
a container could have planted (configMap, secret, downwardAPI and projected volumes are mounted read-only).
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeworkers.volumes.paths import relative_parts

DATA_DIR_NAME = "..data"
_TMP_LINK = "..data_tmp"
DIR_MODE = 0o755


@dataclass(frozen=True)
class FileProjection:
    """One file of a volume: its bytes and mode (never logged: a secret's value may be in ``data``)."""

    data: bytes
    mode: int = 0o644

    def __repr__(self) -> str:
        return f"FileProjection(<{len(self.data)} bytes>, mode={oct(self.mode)})"


Payload = dict[str, FileProjection]


def _read_current(data_dir: Path) -> Payload | None:
    """The files under ``..data`` (None when there is none), to compare with a new payload."""
    if not data_dir.is_symlink():
        return None
    current: Payload = {}
    root = data_dir.resolve()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                current[str(path.relative_to(root))] = FileProjection(path.read_bytes(), stat.S_IMODE(info.st_mode))
    return current


def payload_size(payload: Payload) -> int:
    return sum(len(item.data) for item in payload.values())


class AtomicWriter:
    def __init__(self, target: Path, clock: Callable[[], float] = time.time) -> None:
        self.target = Path(target)
        self._clock = clock

    def write(self, payload: Payload) -> bool:
        """Make ``target`` hold exactly ``payload``; False when it did already (nothing written)."""
        checked = {"/".join(relative_parts(path, "file path")): item for path, item in payload.items()}
        self.target.mkdir(parents=True, exist_ok=True)
        data_link = self.target / DATA_DIR_NAME
        if _read_current(data_link) == checked:
            return False
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime(self._clock()))
        fresh = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=self.target))
        os.chmod(fresh, DIR_MODE)
        for path, item in sorted(checked.items()):
            file = fresh / path
            if file.parent != fresh:
                file.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(item.data)
            os.chmod(file, item.mode)
        tmp_link = self.target / _TMP_LINK
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(fresh.name)
        os.rename(tmp_link, data_link)  # the one atomic step
        wanted = {path.split("/")[0] for path in checked}
        for name in wanted:
            link = self.target / name
            if not link.is_symlink():
                link.symlink_to(f"{DATA_DIR_NAME}/{name}")
        for entry in self.target.iterdir():
            if entry.name.startswith("..") or entry.name in wanted:
                continue
            if entry.is_symlink():  # a file no longer projected
                entry.unlink()
        for entry in self.target.iterdir():  # the old directory, and any left by a write that crashed half-way
            if entry.name.startswith("..") and entry.name not in (DATA_DIR_NAME, fresh.name) and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
        return True
