"""VolumeManager: a pod's volumes set up on the node before its containers start, kept current on every sync, and
torn down once its containers are gone (kubelet's volumemanager and its emptyDir, hostPath, configMap, secret,
downwardAPI and projected plugins, without attach/detach).

Layout under ``<data_dir>/pods/<uid>/`` (mode 0700: no other user of the host reaches a pod's files):

- ``volumes/<name>/``: emptyDir (mode 0777 as kubelet's; a tmpfs for ``medium: Memory``, sized by ``sizeLimit``);
  configMap and downwardAPI files; secret and projected files on a tmpfs of their own (mounted here, sized to twice
  the payload plus 1 MiB so an update fits beside the old copy; a secret never touches the node's disk). These
  four are written by the atomic writer on every sync (unchanged content writes nothing), so a configmap or secret
  changed at the cloud, or a label a downwardAPI file shows, reaches running containers, and are mounted read-only.
  With the pod's ``fsGroup``, each is given to that group (``volumes.ownership``) after each write, an emptyDir once.
- ``volume-subpaths/<volume>/<container>/<n>``: the bind mount of a container's n-th mount's ``subPath``, or of a
  hostPath (with or without a subPath), made from a descriptor opened without following symlinks
  (``paths.open_within``, ``hostpath.open_host_path``) just before the container is created, so a symlink a container
  plants in a shared volume or an allowed host directory can never make the agent expose another host path.

``teardown`` unmounts everything under the pod's directory (deepest first) and removes it only when no mount is left:
removing a directory through a bind mount that failed to unmount would delete what it exposes. A hostPath is never
created there, so never deleted.
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeworkers.k8s.pod import Pod, Volume
from edgeworkers.k8s.quantity import to_bytes
from edgeworkers.volumes.atomic import AtomicWriter, payload_size
from edgeworkers.volumes.builders import Sources, holds_secrets, volume_payload
from edgeworkers.volumes.downward import PodFacts
from edgeworkers.volumes.errors import ConfigSourceError, UnsafePath, VolumeError
from edgeworkers.volumes.hostpath import HostPathPolicy, open_host_path, prepare
from edgeworkers.volumes.mounter import HostMounter, Mounter, MountError
from edgeworkers.volumes.ownership import needs_ownership, set_volume_ownership
from edgeworkers.volumes.paths import (
    open_within,
    pod_dir,
    resolve_within,
    safe_component,
    subpath_dir,
    volume_dir,
)

log = logging.getLogger(__name__)

POD_DIR_MODE = 0o700
KEY_FILE = "pod-key"  # "<namespace>/<name>" of the pod a directory belongs to, so a pod gone without a uid is found
EMPTY_DIR_MODE = 0o777
PROJECTED_ROOT_MODE = 0o755
MIB = 1 << 20


@dataclass(frozen=True)
class ReadyVolume:
    """A volume ready on the host: where it is, whether containers must mount it read-only, whether a missing subPath
    inside it may be made, and whether it is a hostPath (opened and checked again at each bind)."""

    path: Path
    read_only: bool = False
    creatable: bool = False
    host: bool = False


def tmpfs_size(payload_bytes: int) -> int:
    """Room for the current files and a new copy beside them during an atomic update, plus slack for metadata."""
    return 2 * payload_bytes + MIB


def _chmod(path: Path, mode: int) -> None:
    """Set a volume's mode, keeping the setgid bit an fsGroup gave it (``volumes.ownership``)."""
    os.chmod(path, mode | (os.stat(path).st_mode & stat.S_ISGID))


class VolumeManager:
    def __init__(
        self, data_dir: Path, sources: Sources, mounter: Mounter | None = None, clock: Callable[[], float] = time.time,
        host_paths: HostPathPolicy | None = None,
    ) -> None:
        self._data_dir = Path(data_dir)
        self._sources = sources
        self._mounter: Mounter = mounter or HostMounter()
        self._clock = clock
        self._host_paths = host_paths or HostPathPolicy()  # the default allows no hostPath

    # --- set up -----------------------------------------------------------------------------------------

    def setup(self, pod: Pod, facts: PodFacts) -> dict[str, ReadyVolume]:
        """Make every volume of ``pod`` ready (files current); raise VolumeError (ConfigSourceError: a missing
        configmap, secret or key, an unsafe path) naming the first that is not."""
        volumes = pod.spec.volumes or []
        if not volumes:
            return {}
        root = self.pod_dir(pod)
        mounted = set(self._mounter.mounts_under(root))
        return {volume.name: self._setup_one(pod, volume, facts, mounted) for volume in volumes}

    def pod_dir(self, pod: Pod) -> Path:
        """The pod's directory, made (mode 0700, with its key file) if missing; VolumeError when it cannot be."""
        root = pod_dir(self._data_dir, pod.metadata.uid or "")
        try:
            root.mkdir(mode=POD_DIR_MODE, parents=True, exist_ok=True)
            os.chmod(root, POD_DIR_MODE)
            if not (root / KEY_FILE).exists():
                (root / KEY_FILE).write_text(pod.key)
        except OSError as exc:
            raise VolumeError(f"cannot make the pod's directory: {exc.strerror}") from None
        return root

    def _setup_one(self, pod: Pod, volume: Volume, facts: PodFacts, mounted: set[Path]) -> ReadyVolume:
        if volume.host_path is not None:  # a missing subPath in it is made, as kubelet does (never outside it)
            return ReadyVolume(prepare(volume.host_path, self._host_paths), creatable=True, host=True)
        path = volume_dir(self._data_dir, pod.metadata.uid or "", volume.name)
        try:
            if volume.empty_dir is not None:
                path.mkdir(parents=True, exist_ok=True)
                if volume.empty_dir.medium == "Memory" and path not in mounted:
                    limit = volume.empty_dir.size_limit
                    self._mounter.mount_tmpfs(path, to_bytes(limit) if limit else None, EMPTY_DIR_MODE)
                else:
                    _chmod(path, EMPTY_DIR_MODE)
                self._own(pod, path, read_only=False, changed=False)
                return ReadyVolume(path, creatable=True)
            if volume.sources and volume.sources[0] in ("configMap", "secret", "downwardAPI", "projected"):
                payload = volume_payload(pod, volume, self._sources, facts)
                path.mkdir(parents=True, exist_ok=True)
                if holds_secrets(volume):
                    self._ensure_tmpfs(path, tmpfs_size(payload_size(payload)), path in mounted)
                _chmod(path, PROJECTED_ROOT_MODE)
                written = AtomicWriter(path, self._clock).write(payload)
                if written:
                    log.info("pod %s: volume %s written (%d files)", pod.key, volume.name, len(payload))
                self._own(pod, path, read_only=True, changed=written)
                return ReadyVolume(path, read_only=True)
        except MountError as exc:
            raise VolumeError(f'volume "{volume.name}": {exc}') from None
        except OSError as exc:
            raise VolumeError(f'volume "{volume.name}": {exc.strerror or exc}') from None
        kinds = ", ".join(volume.sources) or "its source"
        raise ConfigSourceError(f'volume "{volume.name}": {kinds} volumes are not supported on this node')

    @staticmethod
    def _own(pod: Pod, path: Path, read_only: bool, changed: bool) -> None:
        """Give the volume to the pod's fsGroup (``volumes.ownership``): after each write of its files, else once."""
        ctx = pod.spec.security_context
        if ctx is not None and ctx.fs_group is not None and (changed or needs_ownership(path, ctx.fs_group, read_only)):
            set_volume_ownership(path, ctx.fs_group, read_only)

    def _ensure_tmpfs(self, path: Path, size: int, is_mounted: bool) -> None:
        if not is_mounted:
            self._mounter.mount_tmpfs(path, size, PROJECTED_ROOT_MODE)
            return
        info = os.statvfs(path)
        if info.f_blocks * info.f_frsize < size:
            self._mounter.resize_tmpfs(path, size)

    # --- binds: subPath and hostPath ---------------------------------------------------------------------

    def bind(self, pod: Pod, container: str, index: int, volume: str, ready: ReadyVolume, sub_path: str,
             read_only: bool = False) -> Path:
        """Bind what the container's ``index``-th mount shows (``sub_path`` of a ready volume, or a hostPath itself)
        at its private mount point and return that: opened without following symlinks and bound by its descriptor,
        so what was checked is what is mounted. UnsafePath when it leads outside the volume, or a hostPath outside
        what the policy allows, now or by a symlink swapped in while it is opened."""
        where = f'volume "{volume}"'
        shown = f"{where}: subPath {sub_path!r}" if sub_path else f"{where}: hostPath {ready.path}"
        try:
            if ready.host:
                fd = open_host_path(ready.path, sub_path, self._host_paths, read_only, where)
            else:
                target = resolve_within(ready.path, sub_path, f"{where}: subPath")
                fd = open_within(ready.path, target, f"{where}: subPath", create_dirs=ready.creatable)
        except FileNotFoundError:
            raise VolumeError(f"{shown} does not exist") from None
        except NotADirectoryError:
            raise UnsafePath(f"{shown} goes through something not a directory") from None
        except OSError as exc:  # a container changing the path meanwhile (made it a symlink, a loop ...)
            raise VolumeError(f"{shown}: {exc.strerror}") from None
        try:
            target = subpath_dir(self._data_dir, pod.metadata.uid or "", volume, container, index)
            if target in self._mounter.mounts_under(target):
                self._mounter.unmount(target)
            target.parent.mkdir(mode=POD_DIR_MODE, parents=True, exist_ok=True)
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            if target.is_dir() and not target.is_symlink() and not is_dir:
                shutil.rmtree(target)
            elif target.is_symlink() or (target.exists() and is_dir and not target.is_dir()):
                target.unlink()
            if is_dir:
                target.mkdir(exist_ok=True)
            else:
                target.touch(exist_ok=True)
            # A whole hostPath keeps the mounts below it, as Docker's bind of the path did.
            self._mounter.bind_fd(fd, target, recursive=ready.host and not sub_path, read_only=read_only)
        except MountError as exc:
            raise VolumeError(f"{shown}: {exc}") from None
        except OSError as exc:
            raise VolumeError(f"{shown}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return target

    def has_dir(self, uid: str) -> bool:
        """Whether pod ``uid`` has a directory on the node (a uid that is not a plain name never has)."""
        try:
            return pod_dir(self._data_dir, uid).exists()
        except UnsafePath:
            return False

    def uids_of(self, key: str) -> set[str]:
        """The uids with a directory on the node that belonged to pod ``key`` ("namespace/name")."""
        uids = set()
        pods = self._data_dir / "pods"
        for entry in pods.iterdir() if pods.is_dir() else []:
            try:
                if (entry / KEY_FILE).read_text() == key:
                    uids.add(entry.name)
            except OSError:
                continue
        return uids

    # --- tear down ----------------------------------------------------------------------------------------

    def teardown(self, uid: str) -> bool:
        """Unmount and remove everything the node keeps for pod ``uid``; False (logged) when a mount stays, in
        which case nothing is removed. A uid that is not a plain name is refused: nothing is touched."""
        try:
            root = pod_dir(self._data_dir, safe_component(uid, "pod uid"))
        except UnsafePath as exc:
            log.warning("not removing volumes: %s", exc)
            return True
        if not root.exists():
            return True
        for point in self._mounter.mounts_under(root):
            try:
                self._mounter.unmount(point)
            except MountError as exc:
                log.warning("pod uid %s: %s", uid, exc)
        left = self._mounter.mounts_under(root)
        if left:
            log.warning("pod uid %s: %d mount(s) remain under %s; its directory is kept", uid, len(left), root)
            return False
        try:
            shutil.rmtree(root)
        except OSError as exc:
            log.warning("pod uid %s: cannot remove %s: %s", uid, root, exc.strerror)
            return False
        return True
