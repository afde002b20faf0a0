"""VolumeManager with a FakeMounter on a temporary data dir: set up, update, subPath and hostPath binds and tear
down."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeworkers.volumes.downward import PodFacts
from edgeworkers.volumes.errors import ConfigSourceError, UnsafePath, VolumeError
from edgeworkers.volumes.hostpath import HostPathPolicy, HostPathRule
from edgeworkers.volumes.manager import VolumeManager, tmpfs_size
from edgeworkers.volumes.mounter import FakeMounter, parse_mountinfo
from tests.unit.pods.podkit import make_pod
from tests.unit.volumes.sources import FakeSources

FACTS = PodFacts("192.0.2.1", (), 1000, 2**30)


@pytest.fixture
def sources() -> FakeSources:
    return FakeSources(configmaps={"cfg": {"k": "v1"}}, secrets={"creds": {"password": b"s3cret"}})


@pytest.fixture
def mounter() -> FakeMounter:
    return FakeMounter()


@pytest.fixture
def manager(tmp_path: Path, sources: FakeSources, mounter: FakeMounter) -> VolumeManager:
    allowed = HostPathPolicy((HostPathRule(str(tmp_path)), HostPathRule("/dev/null", read_only=True)))
    return VolumeManager(tmp_path / "data", sources, mounter, host_paths=allowed)


VOLUMES = [
    {"name": "cfg", "configMap": {"name": "cfg"}},
    {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
    {"name": "scratch", "emptyDir": {}},
    {"name": "fast", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
]


def test_volumes_are_set_up_with_secrets_on_tmpfs(manager: VolumeManager, mounter: FakeMounter,
                                                  tmp_path: Path) -> None:
    ready = manager.setup(make_pod(volumes=VOLUMES), FACTS)
    base = tmp_path / "data" / "pods" / "uid-1"
    assert oct(base.stat().st_mode & 0o777) == "0o700"
    assert ready["cfg"].path == base / "volumes" / "cfg" and ready["cfg"].read_only
    assert (ready["cfg"].path / "k").read_text() == "v1"
    assert (ready["creds"].path / "password").read_bytes() == b"s3cret"
    assert oct((ready["creds"].path / "password").stat().st_mode & 0o777) == "0o400"
    assert not ready["scratch"].read_only and oct(ready["scratch"].path.stat().st_mode & 0o777) == "0o777"
    assert mounter.mounts == {base / "volumes" / "creds": "tmpfs", base / "volumes" / "fast": "tmpfs"}
    assert mounter.sizes[base / "volumes" / "fast"] == 16 * 2**20
    assert mounter.sizes[base / "volumes" / "creds"] == tmpfs_size(len(b"s3cret"))


def test_a_second_setup_mounts_nothing_again_and_an_update_reaches_the_files(
    manager: VolumeManager, mounter: FakeMounter, sources: FakeSources
) -> None:
    pod = make_pod(volumes=VOLUMES)
    manager.setup(pod, FACTS)
    calls = len(mounter.calls)
    sources.configmaps["cfg"] = {"k": "v2", "new": "n"}
    ready = manager.setup(pod, FACTS)
    assert mounter.calls[calls:] == []
    assert (ready["cfg"].path / "k").read_text() == "v2" and (ready["cfg"].path / "new").read_text() == "n"


def test_a_missing_configmap_is_a_config_error_naming_it(manager: VolumeManager) -> None:
    pod = make_pod(volumes=[{"name": "cfg", "configMap": {"name": "later"}}])
    with pytest.raises(ConfigSourceError, match='configmap "later" not found'):
        manager.setup(pod, FACTS)


@pytest.mark.parametrize(
    ("host_path", "message"),
    [({"path": "{tmp}/absent", "type": "Directory"}, "does not exist"),
     ({"path": "{tmp}/file", "type": "Directory"}, "is not a directory"),
     ({"path": "{tmp}", "type": "File"}, "is not a file"),
     ({"path": "{tmp}/file", "type": "Socket"}, "is not a socket"),
     ({"path": "{tmp}/file", "type": "CharDevice"}, "is not a character device"),
     ({"path": "/dev/null", "type": "BlockDevice"}, "is not a block device")],
)  # fmt: skip
def test_host_path_type_checks(manager: VolumeManager, tmp_path: Path, host_path: dict, message: str) -> None:
    (tmp_path / "file").write_text("x")
    source = {**host_path, "path": host_path["path"].format(tmp=tmp_path)}
    with pytest.raises(VolumeError, match=message):
        manager.setup(make_pod(volumes=[{"name": "h", "hostPath": source}]), FACTS)


def test_host_path_or_create_types_make_what_is_missing(manager: VolumeManager, tmp_path: Path) -> None:
    volumes = [{"name": "d", "hostPath": {"path": str(tmp_path / "made" / "dir"), "type": "DirectoryOrCreate"}},
               {"name": "f", "hostPath": {"path": str(tmp_path / "made" / "file"), "type": "FileOrCreate"}},
               {"name": "n", "hostPath": {"path": "/dev/null", "type": "CharDevice"}}]
    ready = manager.setup(make_pod(volumes=volumes), FACTS)
    assert ready["d"].path.is_dir() and ready["f"].path.is_file() and ready["n"].path == Path("/dev/null")


def test_sub_paths_are_bound_from_inside_the_volume(manager: VolumeManager, mounter: FakeMounter,
                                                    tmp_path: Path) -> None:
    pod = make_pod(volumes=[{"name": "scratch", "emptyDir": {}}])
    ready = manager.setup(pod, FACTS)["scratch"]
    bind = manager.bind(pod, "app", 0, "scratch", ready, "logs/app")
    assert bind == tmp_path / "data" / "pods" / "uid-1" / "volume-subpaths" / "scratch" / "app" / "0"
    assert Path(mounter.mounts[bind]) == Path(os.path.realpath(ready.path)) / "logs" / "app"
    assert (ready.path / "logs" / "app").is_dir()


def test_a_missing_sub_path_of_a_host_path_is_made_inside_it(manager: VolumeManager, mounter: FakeMounter,
                                                             tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    pod = make_pod(volumes=[{"name": "h", "hostPath": {"path": str(host), "type": "Directory"}}])
    ready = manager.setup(pod, FACTS)["h"]
    bind = manager.bind(pod, "app", 0, "h", ready, "new/dir")
    assert (host / "new" / "dir").is_dir() and Path(mounter.mounts[bind]) == host / "new" / "dir"
    (host / "out").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="leads outside its volume"):
        manager.bind(pod, "app", 1, "h", ready, "out/escape")
    assert not (tmp_path / "escape").exists()


def test_a_host_path_is_bound_by_its_descriptor_and_judged_again(manager: VolumeManager, mounter: FakeMounter,
                                                                  tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    pod = make_pod(volumes=[{"name": "h", "hostPath": {"path": str(host)}},
                            {"name": "n", "hostPath": {"path": "/dev/null"}}])
    ready = manager.setup(pod, FACTS)
    bind = manager.bind(pod, "app", 0, "h", ready["h"], "")
    assert bind == tmp_path / "data" / "pods" / "uid-1" / "volume-subpaths" / "h" / "app" / "0"
    assert Path(mounter.mounts[bind]) == host and mounter.read_only[bind] is False
    read_only = manager.bind(pod, "app", 1, "n", ready["n"], "", read_only=True)
    assert mounter.mounts[read_only] == "/dev/null" and mounter.read_only[read_only] and read_only.is_file()
    with pytest.raises(UnsafePath, match="read-only only"):  # /dev/null is allowed read-only only
        manager.bind(pod, "app", 2, "n", ready["n"], "")
    # Swapped for a symlink after the setup (as during a pull): judged where it leads now, and refused.
    host.rename(tmp_path / "host.old")
    host.symlink_to("/etc")
    with pytest.raises(UnsafePath, match=r"hostPath .* is not allowed: it is not under a pathPrefix"):
        manager.bind(pod, "app", 3, "h", ready["h"], "")


def test_a_host_path_the_policy_refuses_is_not_made(tmp_path: Path, sources: FakeSources,
                                                    mounter: FakeMounter) -> None:
    manager = VolumeManager(tmp_path / "data", sources, mounter)  # the default policy: no hostPath
    pod = make_pod(volumes=[{"name": "h", "hostPath": {"path": str(tmp_path / "new"), "type": "DirectoryOrCreate"}}])
    with pytest.raises(UnsafePath, match="EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS"):
        manager.setup(pod, FACTS)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("planted", ["/etc", "/", "../../..", "../../../../etc"])
def test_a_planted_symlink_never_binds_outside_the_volume(
    manager: VolumeManager, mounter: FakeMounter, planted: str
) -> None:
    pod = make_pod(volumes=[{"name": "scratch", "emptyDir": {}}])
    ready = manager.setup(pod, FACTS)["scratch"]
    (ready.path / "evil").symlink_to(planted)  # as a container sharing the emptyDir would
    with pytest.raises(UnsafePath, match="leads outside its volume"):
        manager.bind(pod, "app", 0, "scratch", ready, "evil")
    assert not [c for c in mounter.calls if c[0] == "bind_fd"]


def test_teardown_unmounts_then_removes_everything(manager: VolumeManager, mounter: FakeMounter,
                                                   tmp_path: Path) -> None:
    manager.setup(make_pod(volumes=VOLUMES), FACTS)
    assert manager.teardown("uid-1")
    assert mounter.mounts == {} and not (tmp_path / "data" / "pods" / "uid-1").exists()


def test_a_mount_that_stays_keeps_the_whole_directory(manager: VolumeManager, mounter: FakeMounter,
                                                      tmp_path: Path) -> None:
    manager.setup(make_pod(volumes=VOLUMES), FACTS)
    busy = tmp_path / "data" / "pods" / "uid-1" / "volumes" / "fast"
    mounter.fail_unmount.add(busy)
    assert not manager.teardown("uid-1")
    assert (tmp_path / "data" / "pods" / "uid-1" / "volumes" / "scratch").is_dir()
    mounter.fail_unmount.clear()
    assert manager.teardown("uid-1")


@pytest.mark.parametrize("uid", ["..", ".", "../..", "a/../..", ""])
def test_an_unsafe_uid_touches_nothing(manager: VolumeManager, tmp_path: Path, uid: str) -> None:
    keep = tmp_path / "data" / "secrets.key"
    keep.parent.mkdir(parents=True)
    keep.write_text("k")
    assert manager.teardown(uid)  # nothing to do, and nothing done
    assert keep.exists()
    with pytest.raises(UnsafePath):
        manager.setup(make_pod(uid=uid, volumes=[{"name": "s", "emptyDir": {}}]), FACTS)


def test_mountinfo_is_parsed_with_its_escapes() -> None:
    text = ("36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n"
            "37 35 0:5 / /var/lib/edgeworkers/pods/u/volumes/s rw - tmpfs tmpfs rw,size=1024k\n")
    assert parse_mountinfo(text) == [Path("/mnt/a b"), Path("/var/lib/edgeworkers/pods/u/volumes/s")]
