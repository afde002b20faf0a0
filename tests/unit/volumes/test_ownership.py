"""fsGroup volume ownership (volumes/ownership.py, kubelet's SetVolumeOwnership) and its use by the VolumeManager: the
group and modes kubelet gives, never through a symlink, once for an emptyDir and after each write of a configMap's."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from edgeworkers.volumes.downward import PodFacts
from edgeworkers.volumes.manager import VolumeManager
from edgeworkers.volumes.mounter import FakeMounter
from edgeworkers.volumes.ownership import needs_ownership, set_volume_ownership
from tests.unit.pods.podkit import make_pod
from tests.unit.volumes.sources import FakeSources

GID = 4242
FACTS = PodFacts("192.0.2.1", (), 1000, 2**30)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_files_and_directories_get_the_group_and_kubelets_modes(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_text("x")
    os.chmod(root / "sub" / "f", 0o600)
    os.chmod(root, 0o755)
    assert needs_ownership(root, GID, read_only=False)
    set_volume_ownership(root, GID, read_only=False)
    assert {os.lstat(p).st_gid for p in (root, root / "sub", root / "sub" / "f")} == {GID}
    assert mode(root) == 0o2775 and mode(root / "sub") & 0o2070 == 0o2070 and mode(root / "sub" / "f") == 0o660
    assert not needs_ownership(root, GID, read_only=False)


def test_read_only_volumes_get_group_read_only(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    (root / "f").write_text("x")
    os.chmod(root / "f", 0o400)
    set_volume_ownership(root, GID, read_only=True)
    assert mode(root / "f") == 0o440


def test_a_symlink_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("host file")
    os.chmod(outside, 0o600)
    root = tmp_path / "vol"
    root.mkdir()
    os.symlink(outside, root / "link")
    os.symlink(tmp_path, root / "dirlink")
    set_volume_ownership(root, GID, read_only=False)
    assert os.stat(outside).st_gid != GID and mode(outside) == 0o600
    assert os.lstat(root / "link").st_gid == GID  # the link itself


def test_the_volume_manager_gives_a_pods_volumes_to_its_fs_group(tmp_path: Path) -> None:
    sources = FakeSources(configmaps={"cfg": {"k": "v1"}})
    manager = VolumeManager(tmp_path / "data", sources, FakeMounter())
    pod = make_pod(securityContext={"fsGroup": GID},
                   volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {}}])
    ready = manager.setup(pod, FACTS)
    scratch, cfg = ready["scratch"].path, ready["cfg"].path
    assert os.stat(scratch).st_gid == GID and mode(scratch) == 0o2777
    assert os.stat(cfg / "k").st_gid == GID and stat.S_IMODE(os.stat(cfg / "k").st_mode) == 0o644  # holds 0440
    (scratch / "made-by-app").write_text("x")  # an emptyDir is walked once: what the app made later stays as it is
    manager.setup(pod, FACTS)
    assert os.stat(scratch / "made-by-app").st_gid == GID  # the setgid directory gave it the group
    os.chown(scratch / "made-by-app", -1, 0)
    manager.setup(pod, FACTS)
    assert os.stat(scratch / "made-by-app").st_gid == 0 and mode(scratch) == 0o2777
    sources.configmaps["cfg"] = {"k": "v2"}  # a new write is given to the group again
    manager.setup(pod, FACTS)
    assert (cfg / "k").read_text() == "v2" and os.stat(cfg / "k").st_gid == GID
