"""Private files: 0600 from the first byte, replaced atomically, no temporary name left behind."""
from __future__ import annotations

import stat
from pathlib import Path

from edgeworkers.privatefiles import ensure_private_dir, write_private


def test_private_files_are_0600_in_0700_directories_and_leave_nothing_else(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    ensure_private_dir(directory)
    write_private(directory / "key", b"one")
    write_private(directory / "key", b"two")
    assert (directory / "key").read_bytes() == b"two"
    assert stat.S_IMODE((directory / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in directory.iterdir()] == ["key"]
