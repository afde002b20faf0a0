"""The path checks: pod identity as path components, projected item paths and subPaths never lead outside their
directory, whatever hypothesis generates, including symlinks planted inside the volume."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeworkers.volumes.errors import UnsafePath
from edgeworkers.volumes.paths import (
    is_within,
    open_within,
    pod_dir,
    relative_parts,
    resolve_within,
    safe_component,
    volume_dir,
)

# Path-ish text: the characters that matter for escaping, plus a few ordinary ones.
PIECES = st.sampled_from(["..", ".", "", "a", "b", "..data", "...", "/", "//", "\\", "x..y", "..a", "~", "\0", " "])
PATHS = st.lists(PIECES, max_size=8).map("/".join) | st.text(max_size=30)


@pytest.mark.parametrize(
    "value", ["3f1c2a9e-8b4d-4f0e-9a6b-1c2d3e4f5a6b", "web", "web-node-1", "kube-system", "a.b", "A_1"]
)
def test_plain_names_are_safe_components(value: str) -> None:
    assert safe_component(value, "uid") == value


@pytest.mark.parametrize("value", ["", ".", "..", "../x", "a/b", "/", ".hidden", "a\0b", "a b", "x" * 254])
def test_anything_else_is_refused_as_a_component(value: str) -> None:
    with pytest.raises(UnsafePath):
        safe_component(value, "uid")


@given(st.text(max_size=40))
def test_no_uid_makes_a_pod_directory_outside_the_pods_directory(uid: str) -> None:
    base = Path("/var/lib/edgeworkers")
    try:
        path = pod_dir(base, uid)
    except UnsafePath:
        return
    assert path.parent == base / "pods" and os.path.normpath(path) == str(path)
    assert is_within(volume_dir(base, uid, "v"), base / "pods" / uid)


@pytest.mark.parametrize(
    ("path", "parts"),
    [("a", ("a",)), ("a/b", ("a", "b")), ("./a//b/", ("a", "b")), ("a/..b", ("a", "..b"))],
)
def test_relative_paths_inside_are_accepted(path: str, parts: tuple[str, ...]) -> None:
    assert relative_parts(path, "path") == parts


@pytest.mark.parametrize(
    ("path", "message"),
    [("", "non-empty"), ("/etc/passwd", "relative"), ("../x", "'..'"), ("a/../../x", "'..'"), ("..data", "start"),
     ("..2026_01_01", "start"), ("...", "start"), (".", "inside"), ("a\0b", "non-empty")],
)  # fmt: skip
def test_escaping_or_reserved_paths_are_refused(path: str, message: str) -> None:
    with pytest.raises(UnsafePath, match=message):
        relative_parts(path, "path")


@given(PATHS)
def test_no_accepted_item_path_resolves_outside_its_volume(path: str) -> None:
    base = "/volume"
    try:
        parts = relative_parts(path, "path")
    except UnsafePath:
        return
    joined = os.path.normpath(os.path.join(base, *parts))
    assert is_within(joined, base) and joined != base
    assert not parts[0].startswith("..")


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """A volume with a symlink a container planted to the host's /etc, one escaping upwards, and one inside."""
    root = tmp_path / "volume"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "file").write_text("x")
    (tmp_path / "outside").mkdir()
    (root / "to-etc").symlink_to("/etc")
    (root / "up").symlink_to("../outside")
    (root / "dir" / "deep-up").symlink_to("../../outside")
    (root / "inside").symlink_to("dir/sub")
    (root / "abs-inside").symlink_to(root / "dir")
    return root


@pytest.mark.parametrize("sub_path", ["to-etc", "to-etc/passwd", "up", "up/x", "dir/deep-up", "dir/deep-up/x"])
def test_symlinks_out_of_the_volume_are_refused(volume: Path, sub_path: str) -> None:
    with pytest.raises(UnsafePath, match="leads outside its volume"):
        resolve_within(volume, sub_path)


@pytest.mark.parametrize(
    ("sub_path", "target"), [("dir", "dir"), ("inside", "dir/sub"), ("abs-inside/sub", "dir/sub"), ("new/x", "new/x")]
)
def test_symlinks_inside_the_volume_resolve_inside(volume: Path, sub_path: str, target: str) -> None:
    assert resolve_within(volume, sub_path) == Path(os.path.realpath(volume)) / target


def test_open_within_refuses_a_symlink_swapped_in_after_the_check(volume: Path) -> None:
    target = resolve_within(volume, "dir/sub")
    (volume / "dir" / "sub").rmdir()
    (volume / "dir" / "sub").symlink_to("/etc")  # the race a container wins after the check
    with pytest.raises(UnsafePath, match="symlink"):
        open_within(volume, target)


def test_open_within_makes_missing_directories_with_the_volume_mode(volume: Path) -> None:
    os.chmod(volume, 0o777)
    fd = open_within(volume, Path(os.path.realpath(volume)) / "made" / "here", create_dirs=True)
    os.close(fd)
    assert (volume / "made" / "here").is_dir()
    assert oct((volume / "made" / "here").stat().st_mode & 0o777) == oct(0o777)


NAMES = st.sampled_from(["a", "b", "c", "..", ".", "to-etc", "up", "inside", "d"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    links=st.lists(st.tuples(st.lists(NAMES, min_size=1, max_size=3),
                             st.sampled_from(["/etc", "/", "..", "../..", "a", "../a", "b/../..", "/tmp", "."])),
                   max_size=5),
    sub_path=st.lists(NAMES, min_size=1, max_size=5).map("/".join),
)  # fmt: skip
def test_no_generated_sub_path_resolves_or_opens_outside_its_volume(
    tmp_path_factory: pytest.TempPathFactory, links: list[tuple[list[str], str]], sub_path: str
) -> None:
    root = tmp_path_factory.mktemp("prop") / "volume"
    root.mkdir()
    for parts, target in links:  # symlinks a container could have planted anywhere inside
        if ".." in parts or "." in parts:
            continue
        where = root.joinpath(*parts)
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            where.symlink_to(target)
        except OSError:  # exists already, or a symlink loop on the way: that layout is not made
            continue
    real_root = os.path.realpath(root)
    try:
        resolved = resolve_within(root, sub_path)
    except UnsafePath:
        return
    assert is_within(resolved, real_root)
    try:
        fd = open_within(root, resolved, create_dirs=True)
    except (UnsafePath, OSError):
        return
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    assert is_within(opened, real_root), (sub_path, opened)
