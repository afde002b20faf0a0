"""hostPath volumes: which host paths a pod may mount, and opening them so that what was checked is what is mounted.

The policy (README "Admission") is an allowlist with a floor beneath it:

- ``EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS``: PodSecurityPolicy's ``allowedHostPaths``, entries of ``pathPrefix``
  and ``readOnly``. A hostPath is allowed only at or below a prefix, on whole path components (``/var/log`` allows
  ``/var/log`` and ``/var/log/app``, not ``/var/logger``); where every prefix holding it is ``readOnly``, every mount
  of it must be read-only. Empty by default: no hostPath at all.
- ``EDGEWORKERS_ADMISSION_DENIED_HOST_PATHS``: paths that no allowlist entry opens (the Docker socket and data root,
  the agent's own directories, /etc, /proc, /sys): a hostPath at, below or above one (``/`` and ``/var`` hold some) is
  refused even under an allowed prefix. Opening one of them takes changing this setting too, on purpose.

Paths are judged as the host resolves them (symlinks followed, ``..`` taken after them), the denied ones also as
written (``/var/run`` is ``/run``). A pod can change what its hostPath leads to (a symlink planted in a writable
allowed directory) between admission and its container's creation, which may be minutes apart (an image pull), so
the check is made again on what is actually mounted: ``open_host_path`` opens the path one component at a time
without following symlinks (``paths.open_within``), judges the opened descriptor's own path, and the caller
bind-mounts that descriptor; Docker is given the bind, never the pod's path.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import HostPathVolumeSource
from edgeworkers.volumes.errors import UnsafePath, VolumeError
from edgeworkers.volumes.paths import is_within, open_within, resolve_within

ALLOWED_SETTING = "EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS"
DENIED_SETTING = "EDGEWORKERS_ADMISSION_DENIED_HOST_PATHS"
DOCKER_PATHS = ("/var/run/docker.sock", "/run/docker.sock", "/var/lib/docker", "/run/containerd")
SYSTEM_PATHS = ("/etc", "/proc", "/sys")
STATE_DIR = "/var/lib/edgeworkers"  # where ops/ keeps the agent's Redis file (EDGEWORKERS_STATE_DIR)
CREATED_MODE = 0o755  # kubelet's DirectoryOrCreate, and Docker's for a missing bind source
ROOT = Path("/")


@dataclass(frozen=True)
class HostPathRule:
    prefix: str  # normalised, absolute
    read_only: bool = False


@dataclass(frozen=True)
class HostPathPolicy:
    """What hostPaths pods may mount; the default allows none."""

    allowed: tuple[HostPathRule, ...] = ()
    denied: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPathPolicy:
        denied = settings.admission_denied_host_paths
        if denied is None:
            docker_socket = [settings.docker_host.removeprefix("unix://")] if \
                settings.docker_host.startswith("unix://") else []
            denied = [*DOCKER_PATHS, *docker_socket, str(settings.data_dir), str(settings.cloud_data_dir), STATE_DIR,
                      *SYSTEM_PATHS]
        return cls(
            allowed=tuple(HostPathRule(os.path.normpath(rule.path_prefix), rule.read_only)
                          for rule in settings.admission_allowed_host_paths),
            denied=tuple(dict.fromkeys(os.path.normpath(p) for p in denied if p)),
        )

    def refusal(self, path: str, read_only: bool, resolve: bool = True) -> str | None:
        """Why hostPath ``path``, mounted read-only or not, is refused (naming the setting that decides); None when
        it is allowed. ``resolve=False``: ``path`` is where an opened descriptor is, judged as it is."""
        if not path.startswith("/"):
            return "it is not an absolute path"
        hit = denied_host_path(path, self.denied, resolve)
        if hit is not None:
            return f"it is, lies under or holds {hit} ({DENIED_SETTING})"
        real = _resolved(path) if resolve else os.path.normpath(path)
        matches = [rule for rule in self.allowed if any(is_within(real, form) for form in _forms(rule.prefix))]
        if not matches:
            leads = f" (it leads to {real})" if real != os.path.normpath(path) else ""
            return f"it is not under a pathPrefix of {ALLOWED_SETTING}{leads}"
        if not read_only and all(rule.read_only for rule in matches):
            prefixes = ", ".join(sorted({rule.prefix for rule in matches}))
            return f"{ALLOWED_SETTING} allows {prefixes} read-only only: every mount of it needs readOnly: true"
        return None


def _resolved(path: str) -> str:
    try:
        return os.path.realpath(path)
    except OSError:  # unreadable on the way (another namespace's /proc entries): judged as written
        return os.path.normpath(path)


def _forms(path: str) -> set[str]:
    """A path as written (normalised) and with the host's symlinks resolved."""
    return {os.path.normpath(path), _resolved(path)}


def denied_host_path(path: str, denied: tuple[str, ...], resolve: bool = True) -> str | None:
    """The denied path that hostPath ``path`` is, lies under, or holds; None when it is none of them."""
    for candidate in _forms(path) if resolve else {os.path.normpath(path)}:
        for entry in denied:
            for form in _forms(entry):
                if is_within(candidate, form) or is_within(form, candidate):
                    return entry
    return None


_KINDS = {
    "Directory": (stat.S_ISDIR, "a directory"), "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a file"), "FileOrCreate": (stat.S_ISREG, "a file"),
    "Socket": (stat.S_ISSOCK, "a socket"), "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}  # fmt: skip


def prepare(source: HostPathVolumeSource, policy: HostPathPolicy) -> Path:
    """kubelet's hostPath type checks, on the path the policy allows (UnsafePath otherwise). What is missing is made
    without following a symlink: a directory (0755) for ``DirectoryOrCreate`` and for no type (as Docker makes a
    missing bind source), a 0644 file for ``FileOrCreate``."""
    written, kind = source.path, source.type or ""
    refusal = policy.refusal(written, read_only=True)  # the read-only rule is the mounts' (admission, open_host_path)
    if refusal is not None:
        raise UnsafePath(f"hostPath {written} is not allowed: {refusal}")
    real = Path(_resolved(written))
    try:
        if kind == "FileOrCreate":
            parent = open_within(ROOT, real.parent, f"hostPath {written}", create_dirs=True, mode=CREATED_MODE)
            try:
                os.close(os.open(real.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=parent))
            except FileExistsError:
                pass
            finally:
                os.close(parent)
        fd = open_within(ROOT, real, f"hostPath {written}", create_dirs=kind in ("", "DirectoryOrCreate"),
                         mode=CREATED_MODE)
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise VolumeError(f"hostPath type check failed: {written} does not exist") from None
    except OSError as exc:
        raise VolumeError(f"hostPath {written}: {exc.strerror}") from None
    if kind in _KINDS:
        check, what = _KINDS[kind]
        if not check(info.st_mode):
            raise VolumeError(f"hostPath type check failed: {written} is not {what}")
    return Path(written)


def open_host_path(path: Path, sub_path: str, policy: HostPathPolicy, read_only: bool, what: str) -> int:
    """An ``O_PATH`` descriptor of hostPath ``path`` (or of ``sub_path`` inside it, made when missing), opened from
    ``/`` without following any symlink, and allowed by ``policy`` as it is now; the caller binds and closes it.
    UnsafePath when it is not allowed (any longer) or changed into a symlink while it was opened."""
    real = Path(_resolved(str(path)))
    target = resolve_within(real, sub_path, f"{what}: subPath") if sub_path else real
    fd = open_within(real, target, what, create_dirs=bool(sub_path), mode=CREATED_MODE)
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")  # where the descriptor really is, whatever happened meanwhile
        refusal = policy.refusal(opened, read_only, resolve=False)
        if refusal is not None:
            leads = f" (it leads to {opened})" if opened != os.path.normpath(path) else ""
            raise UnsafePath(f"{what}: hostPath {path}{leads} is not allowed: {refusal}")
    except BaseException:
        os.close(fd)
        raise
    return fd
