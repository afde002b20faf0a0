"""The atomic writer: the payload appears under ``..data`` in one rename, unchanged payloads write nothing, removed
keys disappear, old directories go, and nothing is written outside the volume."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeworkers.volumes.atomic import DATA_DIR_NAME, AtomicWriter, FileProjection
from edgeworkers.volumes.errors import UnsafePath


def files(root: Path) -> dict[str, tuple[bytes, str]]:
    """What a reader of the volume sees: user-visible paths, their bytes and modes (following the symlinks)."""
    seen = {}
    for dirpath, _dirs, names in os.walk(root, followlinks=True):
        rel = Path(dirpath).relative_to(root)
        if rel.parts and rel.parts[0].startswith(".."):
            continue
        for name in names:
            path = Path(dirpath) / name
            if not (rel / name).parts[0].startswith(".."):
                seen[str(rel / name)] = (path.read_bytes(), oct(path.stat().st_mode & 0o777))
    return seen


def stamped(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("..") and p.name != DATA_DIR_NAME)


def test_a_payload_is_written_behind_the_data_link(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path / "v")
    assert writer.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o400)})
    assert files(tmp_path / "v") == {"a": (b"1", "0o644"), "dir/b": (b"2", "0o400")}
    assert os.readlink(tmp_path / "v" / "a") == "..data/a"
    assert os.readlink(tmp_path / "v" / DATA_DIR_NAME) == stamped(tmp_path / "v")[0]


def test_an_unchanged_payload_writes_nothing(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path / "v")
    writer.write({"a": FileProjection(b"1")})
    before = os.readlink(tmp_path / "v" / DATA_DIR_NAME)
    assert not writer.write({"a": FileProjection(b"1")})
    assert os.readlink(tmp_path / "v" / DATA_DIR_NAME) == before


@pytest.mark.parametrize(
    "second",
    [{"a": FileProjection(b"changed")}, {"a": FileProjection(b"1", 0o600)}, {"a": FileProjection(b"1"),
                                                                              "c": FileProjection(b"3")}],
)
def test_a_change_swaps_in_a_new_directory_and_removes_the_old(tmp_path: Path, second: dict) -> None:
    writer = AtomicWriter(tmp_path / "v")
    writer.write({"a": FileProjection(b"1"), "gone": FileProjection(b"x")})
    first = stamped(tmp_path / "v")
    assert writer.write(second)
    assert {k: v[0] for k, v in files(tmp_path / "v").items()} == {k: v.data for k, v in second.items()}
    assert stamped(tmp_path / "v") != first and len(stamped(tmp_path / "v")) == 1
    assert not (tmp_path / "v" / "gone").is_symlink()


def test_an_empty_payload_leaves_an_empty_volume(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path / "v")
    writer.write({"a": FileProjection(b"1")})
    writer.write({})
    assert files(tmp_path / "v") == {}


@pytest.mark.parametrize("path", ["../escape", "/etc/evil", "..data", "a/../../escape"])
def test_unsafe_paths_write_nothing(tmp_path: Path, path: str) -> None:
    writer = AtomicWriter(tmp_path / "v")
    with pytest.raises(UnsafePath):
        writer.write({"ok": FileProjection(b"1"), path: FileProjection(b"evil")})
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "v").exists() or files(tmp_path / "v") == {}


def test_file_projections_do_not_show_their_data() -> None:
    assert "s3cret" not in repr(FileProjection(b"s3cret")) and "s3cret" not in str(FileProjection(b"s3cret"))
