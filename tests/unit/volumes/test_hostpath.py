"""The hostPath policy from tables (allowlist prefixes on path-component boundaries, ``..``, trailing slashes,
symlinks resolved, read-only entries, the denied floor beneath), and opening a hostPath: what is opened is what was
allowed, a symlink swapped in meanwhile refuses it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeworkers.config import AllowedHostPath, Settings
from edgeworkers.k8s.pod import HostPathVolumeSource
from edgeworkers.volumes.errors import UnsafePath, VolumeError
from edgeworkers.volumes.hostpath import HostPathPolicy, HostPathRule, open_host_path, prepare


def policy(*rules: tuple[str, bool], denied: tuple[str, ...] = ("/etc", "/proc")) -> HostPathPolicy:
    return HostPathPolicy(tuple(HostPathRule(os.path.normpath(p), ro) for p, ro in rules), denied)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/var/log", True), ("/var/log/", True), ("/var/log/app/x.log", True), ("//var//log//app", True),
     ("/var/logger", False), ("/var/lo", False), ("/var", False), ("/", False),
     ("/var/log/../lib", False), ("/var/log/app/../../log/app", True), ("/var/log/..", False), ("var/log", False)],
)  # fmt: skip
def test_an_allowed_prefix_covers_whole_path_components(path: str, allowed: bool) -> None:
    assert (policy(("/var/log", False)).refusal(path, read_only=False) is None) == allowed


def test_a_trailing_slash_in_the_prefix_changes_nothing() -> None:
    rules = policy(("/var/log/", False))
    assert rules.refusal("/var/log", False) is None and rules.refusal("/var/logger", False) is not None


def test_nothing_is_allowed_by_default() -> None:
    assert "EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS" in HostPathPolicy().refusal("/srv", read_only=True)


def test_a_symlink_is_judged_by_where_it_leads(tmp_path: Path) -> None:
    (tmp_path / "allowed").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "allowed" / "out").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "in").symlink_to(tmp_path / "allowed")
    rules = policy((str(tmp_path / "allowed"), False))
    refusal = rules.refusal(str(tmp_path / "allowed" / "out"), False)
    assert refusal is not None and f"(it leads to {tmp_path / 'elsewhere'})" in refusal
    assert rules.refusal(str(tmp_path / "in" / "x"), False) is None  # a symlink into the allowed directory
    via_link = policy((str(tmp_path / "in"), False))  # a prefix that is itself a symlink
    assert via_link.refusal(str(tmp_path / "allowed" / "x"), False) is None


def test_a_read_only_prefix_allows_only_read_only_mounts_unless_another_allows_writing() -> None:
    read_only = policy(("/var/log", True))
    assert read_only.refusal("/var/log/app", read_only=True) is None
    assert "allows /var/log read-only only" in read_only.refusal("/var/log/app", read_only=False)
    both = policy(("/var/log", True), ("/var/log/app", False))  # PodSecurityPolicy: any writable match allows it
    assert both.refusal("/var/log/app/x", read_only=False) is None
    assert both.refusal("/var/log/other", read_only=False) is not None


def test_the_denied_floor_holds_under_an_allowed_prefix() -> None:
    everything = policy(("/", False))
    assert "EDGEWORKERS_ADMISSION_DENIED_HOST_PATHS" in everything.refusal("/etc/cron.d", False)
    assert "holds /etc" in everything.refusal("/", False)
    assert everything.refusal("/srv", False) is None


def test_the_settings_give_the_policy() -> None:
    settings = Settings(node_name="n1", admission_allowed_host_paths=[AllowedHostPath(pathPrefix="/var/log/",
                                                                                      readOnly=True)])
    built = HostPathPolicy.from_settings(settings)
    assert built.allowed == (HostPathRule("/var/log", True),) and "/var/run/docker.sock" in built.denied


@pytest.mark.parametrize("prefix", ["var/log", "/var/../etc", ""])
def test_a_prefix_must_be_absolute_without_backsteps(prefix: str) -> None:
    with pytest.raises(ValueError, match="pathPrefix must be an absolute path"):
        Settings(node_name="n1", admission_allowed_host_paths=[{"pathPrefix": prefix}])


# --- prepare and open --------------------------------------------------------------------------------------------


def test_or_create_types_make_what_is_missing_without_following_a_symlink(tmp_path: Path) -> None:
    rules = policy((str(tmp_path / "allowed"), False))
    (tmp_path / "allowed").mkdir()
    made = prepare(HostPathVolumeSource(path=str(tmp_path / "allowed" / "a" / "b"), type="DirectoryOrCreate"), rules)
    assert made.is_dir() and (made.stat().st_mode & 0o777) == 0o755
    prepare(HostPathVolumeSource(path=str(tmp_path / "allowed" / "c" / "f"), type="FileOrCreate"), rules)
    assert (tmp_path / "allowed" / "c" / "f").is_file()
    # A symlink planted by a pod in the allowed directory, leading outside: refused, nothing made there.
    (tmp_path / "allowed" / "link").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").mkdir()
    with pytest.raises(UnsafePath, match="is not allowed"):
        prepare(HostPathVolumeSource(path=str(tmp_path / "allowed" / "link" / "d"), type="DirectoryOrCreate"), rules)
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_host_path_outside_the_policy_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath, match="not under a pathPrefix"):
        prepare(HostPathVolumeSource(path=str(tmp_path / "new"), type="DirectoryOrCreate"), HostPathPolicy())
    assert not (tmp_path / "new").exists()


def test_type_checks_still_apply(tmp_path: Path) -> None:
    rules = policy((str(tmp_path), False))
    (tmp_path / "file").write_text("x")
    with pytest.raises(VolumeError, match="is not a directory"):
        prepare(HostPathVolumeSource(path=str(tmp_path / "file"), type="Directory"), rules)
    with pytest.raises(VolumeError, match="does not exist"):
        prepare(HostPathVolumeSource(path=str(tmp_path / "none"), type="File"), rules)


def test_open_judges_what_it_opened(tmp_path: Path) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "data").mkdir(parents=True)
    outside.mkdir()
    rules = policy((str(allowed), False))
    fd = open_host_path(allowed / "data", "", rules, read_only=False, what='volume "v"')
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == str(allowed / "data")
    finally:
        os.close(fd)
    # Swapped for a symlink leading outside after admission (during a pull): refused where it leads.
    (allowed / "data").rename(allowed / "data.old")
    (allowed / "data").symlink_to(outside)
    with pytest.raises(UnsafePath, match="not under a pathPrefix"):
        open_host_path(allowed / "data", "", rules, read_only=False, what='volume "v"')
    # A subPath inside an allowed hostPath is made, a subPath leading outside refused.
    (allowed / "data").unlink()
    (allowed / "data.old").rename(allowed / "data")
    fd = open_host_path(allowed / "data", "new/dir", rules, read_only=False, what='volume "v"')
    os.close(fd)
    assert (allowed / "data" / "new" / "dir").is_dir()
    (allowed / "data" / "up").symlink_to(outside)
    with pytest.raises(UnsafePath, match="leads outside its volume"):
        open_host_path(allowed / "data", "up/x", rules, read_only=False, what='volume "v"')
