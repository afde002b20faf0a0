"""Termination messages, as kubelet reads them (kuberuntime_container.go: makeMounts, getTerminationMessage,
readLastStringFromContainerLogs).

Each instance of a container gets a file of its own under its pod's directory,
``<data_dir>/pods/<uid>/containers/<name>/<restartCount>``, created empty (mode 0666, so any user the container runs
as may write it) and bind-mounted at the spec's ``terminationMessagePath``. The file is named by the instance's
restart count, which the container's labels carry, so the status finds it again from Docker alone, after a worker
restart too; every component is checked (``volumes.paths.safe_component``), so labels cannot lead it elsewhere.

Once the instance has exited, its message is the file's last 4096 bytes; with ``FallbackToLogsOnError``, a failed
container whose file is empty (or missing) gets its log's tail instead: the last 80 lines, at most 2048 bytes.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.pod import Pod
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.types import Container, ContainerConfig, ContainerID, Mount, PodRef
from edgeworkers.volumes.errors import UnsafePath
from edgeworkers.volumes.paths import pod_dir, safe_component

log = logging.getLogger(__name__)

FALLBACK_TO_LOGS_ON_ERROR = "FallbackToLogsOnError"
MAX_MESSAGE_BYTES = 4096  # kubecontainer.MaxContainerTerminationMessageLength
MAX_LOG_LINES = 80  # MaxContainerTerminationMessageLogLines
MAX_LOG_BYTES = 2048  # MaxContainerTerminationMessageLogLength
FILE_MODE = 0o666

# How the logs of a container are read: the runtime's ``logs(container, tail=...)``.
ReadLogs = Callable[..., Iterator[bytes]]


class BadMessagePath(ValueError):
    """The spec's terminationMessagePath cannot be a mount target (not absolute, or with a ':' Docker would split)."""


def message_file(data_dir: Path, pod: PodRef, container: str, restart_count: int) -> Path:
    """Where one instance's termination message lives on the node (UnsafePath for a uid or name not a plain name)."""
    return (pod_dir(data_dir, pod.uid) / "containers" / safe_component(container, "container name")
            / str(int(restart_count)))


def prepare(data_dir: Path, pod: PodRef, spec: SpecContainer, restart_count: int) -> Mount | None:
    """Create the instance's empty message file and return its mount (None without a terminationMessagePath);
    the files of instances older than the one before are removed (the status shows only the last two)."""
    target = spec.termination_message_path
    if not target:
        return None
    if not target.startswith("/") or ":" in target or "\0" in target:
        raise BadMessagePath(f"terminationMessagePath {target!r} must be an absolute path without ':'")
    path = message_file(data_dir, pod, spec.name, restart_count)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.iterdir():  # its postStart records too (``pods.hooks``): ``<restart>.postStart``
        count = old.name.split(".")[0]
        if count.isdigit() and int(count) < restart_count - 1:
            old.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
    finally:
        os.close(fd)
    return Mount(str(path), target)


def with_message_file(
    config: ContainerConfig, data_dir: Path, pod: PodRef, spec: SpecContainer, restart_count: int
) -> ContainerConfig:
    """``config`` with the instance's message file mounted (BadMessagePath for a path that cannot be one); a file
    that cannot be made is logged and left out, as kubelet does."""
    try:
        mount = prepare(data_dir, pod, spec, restart_count)
    except (OSError, UnsafePath) as exc:
        log.warning("pod %s container %s: no termination message file: %s", pod.key, spec.name, exc)
        return config
    return config if mount is None else replace(config, mounts=[*config.mounts, mount])


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of the file (kubelet's tail.ReadAtMost); FileNotFoundError when it is missing."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - limit), os.SEEK_SET)
        return os.read(fd, limit)
    finally:
        os.close(fd)


def log_tail(read_logs: ReadLogs, container: ContainerID) -> str:
    """The last ``MAX_LOG_LINES`` lines of the container's log, at most ``MAX_LOG_BYTES`` of them (the end)."""
    try:
        data = b"".join(read_logs(container, tail=MAX_LOG_LINES))
    except ContainerRuntimeError as exc:
        return f"Error on reading termination message from logs: {exc}"
    return data[-MAX_LOG_BYTES:].decode(errors="replace")


def termination_message(data_dir: Path, container: Container, spec: SpecContainer, read_logs: ReadLogs) -> str:
    """The message of an exited instance of ``spec``: its file's end, or (FallbackToLogsOnError, a failure and an
    empty file) its log's tail."""
    fallback = spec.termination_message_policy == FALLBACK_TO_LOGS_ON_ERROR and (container.exit_code or 0) != 0
    data = b""
    if spec.termination_message_path:
        try:
            data = read_tail(message_file(data_dir, container.pod, spec.name, container.restart_count),
                             MAX_MESSAGE_BYTES)
        except (FileNotFoundError, UnsafePath):
            pass
        except OSError as exc:
            return f"Error on reading termination log {spec.termination_message_path}: {exc.strerror}"
    if not data and fallback:
        return log_tail(read_logs, container.id)
    return data.decode(errors="replace")


class TerminationMessages:
    """The messages of exited instances, each read once: an exited container's file and log no longer change."""

    MAX_KEPT = 1024

    def __init__(self, data_dir: Path, read_logs: ReadLogs) -> None:
        self._data_dir = Path(data_dir)
        self._read_logs = read_logs
        self._known: dict[str, str] = {}

    def of(self, containers: list[Container], pod: Pod) -> dict[str, str]:
        """Container id -> message, for the exited instances of the pod's containers (empty ones left out)."""
        by_name = {(spec.name, True): spec for spec in pod.spec.init_containers or []}
        by_name.update({(spec.name, False): spec for spec in pod.spec.containers})
        messages = {}
        for container in containers:
            spec = by_name.get((container.name, container.is_init))
            if spec is None or container.is_sandbox or container.exit_code is None:
                continue
            message = self._known.get(container.id.id)
            if message is None:
                if len(self._known) >= self.MAX_KEPT:
                    self._known.clear()
                message = self._known[container.id.id] = termination_message(
                    self._data_dir, container, spec, self._read_logs
                )
            if message:
                messages[container.id.id] = message
        return messages
