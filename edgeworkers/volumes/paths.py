"""Path checks: nothing built from a pod's fields, or found inside a volume a container can write, leads outside its
directory.

Three kinds of input make host paths:
- the pod's identity (uid, namespace, name) becomes one path component under the agent's data directory:
  ``safe_component`` refuses ``..``, ``.``, separators and anything else that is not a plain name, so a node-local pod
  whose uid is ``..`` can neither create nor delete anything outside ``<data_dir>/pods/``;
- projected file paths (configMap/secret ``items[].path``, downward API files): ``relative_parts`` refuses absolute
  paths, ``..`` components and names starting with ``..`` (reserved for the atomic writer's own entries);
- a mount's ``subPath``: lexically checked by ``relative_parts`` too, then resolved on the host with ``resolve_within``
  (symlinks followed as the host follows them, the result kept inside the volume) and opened with ``open_within``,
  which walks every component with ``O_NOFOLLOW``: a symlink a container swaps in after the check makes the open
  fail rather than escape (the CVE-2017-1002101 class). The caller bind-mounts the opened descriptor, not the path.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path, PurePosixPath

from edgeworkers.volumes.errors import UnsafePath

# A plain file name: letters, digits, '.', '_', '-', not starting with '.', at most 253 characters (a DNS subdomain's
# length, below every filesystem's 255). Pod uids (UUIDs), namespaces, names, volume and container names fit.
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


def safe_component(value: str, what: str) -> str:
    """``value`` when it is one plain path component; UnsafePath naming ``what`` otherwise."""
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value):
        raise UnsafePath(f"{what} {value!r} cannot be used as a path on this node (want letters, digits, '.', '_', "
                         "'-', not starting with '.')")
    return value


def relative_parts(path: str, what: str) -> tuple[str, ...]:
    """The components of a relative path that stays inside its directory; UnsafePath otherwise.

    Refused: empty, absolute, a NUL byte, a ``..`` component, a first component starting with ``..`` (the atomic
    writer's ``..data`` and timestamped directories). ``.`` and empty components are dropped.
    """
    if not isinstance(path, str) or not path or "\0" in path:
        raise UnsafePath(f"{what} {path!r} must be a non-empty relative path")
    if path.startswith("/"):
        raise UnsafePath(f"{what} {path!r} must be a relative path")
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if not parts:
        raise UnsafePath(f"{what} {path!r} must name something inside the volume")
    if ".." in parts:
        raise UnsafePath(f"{what} {path!r} must not contain '..'")
    if parts[0].startswith(".."):
        raise UnsafePath(f"{what} {path!r} must not start with '..'")
    return parts


def is_within(path: str | os.PathLike[str], base: str | os.PathLike[str]) -> bool:
    """Whether normalised ``path`` is ``base`` or below it (lexically: resolve symlinks first)."""
    path, base = os.path.normpath(path), os.path.normpath(base)
    return path == base or path.startswith(base.rstrip("/") + "/")


def resolve_within(root: Path, sub_path: str, what: str = "subPath") -> Path:
    """``root / sub_path`` with every symlink resolved as the host resolves it; UnsafePath when the result leaves
    ``root`` (an absolute symlink is the host's path, not the container's: ``/etc`` is the host's /etc, refused).
    Components that do not exist yet are kept as they are."""
    parts = relative_parts(sub_path, what)
    try:
        real_root = os.path.realpath(root)
        target = os.path.realpath(os.path.join(real_root, *parts))
    except OSError as exc:
        raise UnsafePath(f"{what} {sub_path!r} cannot be resolved: {exc.strerror}") from None
    if not is_within(target, real_root):
        raise UnsafePath(f"{what} {sub_path!r} leads outside its volume")
    return Path(target)


def open_within(root: Path, target: Path, what: str = "subPath", create_dirs: bool = False,
                mode: int | None = None) -> int:
    """An ``O_PATH`` descriptor of ``target`` (a resolved path inside the real path of ``root``), opened one component
    at a time from ``/`` with ``O_NOFOLLOW``; UnsafePath when any component is a symlink (swapped in since it was
    resolved). ``create_dirs``: missing components below ``root`` are made as directories with ``mode`` (default:
    ``root``'s). The caller closes it.
    """
    real_root = Path(os.path.realpath(root))
    if not is_within(target, real_root):
        raise UnsafePath(f"{what} {target} is outside its volume")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in real_root.parts[1:]:
            fd = _step(fd, part, what, target)
        if mode is None:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        for part in Path(target).relative_to(real_root).parts:
            fd = _step(fd, part, what, target, mode if create_dirs else None)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _step(fd: int, part: str, what: str, target: Path, create_mode: int | None = None) -> int:
    """The descriptor of ``part`` in directory ``fd``, not following a symlink (made with ``create_mode`` when
    missing and one is given); ``fd`` is closed when it is returned (left open when this raises)."""
    made = False
    try:
        child = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except FileNotFoundError:
        if create_mode is None:
            raise
        with contextlib.suppress(FileExistsError):  # made meanwhile: opened below, without following it
            os.mkdir(part, create_mode, dir_fd=fd)  # mkdirat: an O_PATH descriptor serves as dir_fd
            made = True
        child = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    try:
        kind = os.fstat(child).st_mode
        if stat.S_ISLNK(kind):
            raise UnsafePath(f"{what} {target} changed into a symlink while it was being opened")
        if made and stat.S_ISDIR(kind):
            os.chmod(f"/proc/self/fd/{child}", create_mode)  # past the umask, on the directory just opened
    except BaseException:
        os.close(child)
        raise
    os.close(fd)
    return child


def pod_dir(data_dir: Path, uid: str) -> Path:
    """``<data_dir>/pods/<uid>``, the uid checked first."""
    return Path(data_dir) / "pods" / safe_component(uid, "pod uid")


def volume_dir(data_dir: Path, uid: str, volume: str) -> Path:
    """Where volume ``volume`` of pod ``uid`` lives on the node (emptyDir, configMap, secret, ...)."""
    return pod_dir(data_dir, uid) / "volumes" / safe_component(volume, "volume name")


def subpath_dir(data_dir: Path, uid: str, volume: str, container: str, index: int) -> Path:
    """Where the bind mount of a container's ``index``-th mount with a subPath lives (kubelet's volume-subpaths)."""
    return (pod_dir(data_dir, uid) / "volume-subpaths" / safe_component(volume, "volume name")
            / safe_component(container, "container name") / str(int(index)))


def posix(parts: tuple[str, ...]) -> str:
    return str(PurePosixPath(*parts))
