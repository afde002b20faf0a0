"""The Runtime protocol: everything edged asks of a container engine.

Mirrors kubelet's kubecontainer.Runtime, cut down to what a Docker-backed edge needs. Docker SDK objects
never cross it: only the types in ``runtime.types``.
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from edgeworkers.k8s.keyring import RegistryAuth
from edgeworkers.runtime.types import (
    Container,
    ContainerConfig,
    ContainerID,
    ContainerUsage,
    ExecResult,
    Image,
    PodRef,
    SandboxConfig,
)

# What ``Runtime.exec`` keeps of a command's output: the first 10 KiB, as kubelet keeps of a probe's.
EXEC_OUTPUT_MAX = 10 * 1024
# A StreamSession without a tty carries Docker's multiplexed stream: frames of a header (stream type, 3 bytes of
# padding, payload size) and a payload.
FRAME_HEADER = struct.Struct(">BxxxI")


def split_frames(buffer: bytearray) -> Iterator[bytes]:
    """Take each whole frame's payload off the front of ``buffer`` (Docker's multiplexed stream, without a tty), in
    order; a partial frame stays in it for the bytes that complete it."""
    while len(buffer) >= FRAME_HEADER.size:
        _, size = FRAME_HEADER.unpack_from(buffer)
        end = FRAME_HEADER.size + size
        if len(buffer) < end:
            return
        payload = bytes(buffer[FRAME_HEADER.size : end])
        del buffer[:end]
        yield payload


class StreamSession(Protocol):
    """A started exec (or attach): its raw stream and its control. Every method blocks (run it off the event loop).

    ``sock`` carries stdin one way and the output the other: stdout and stderr in Docker's multiplexed frames (an
    8-byte header each) unless ``tty``, when the terminal's output comes as is.
    """

    sock: socket.socket
    tty: bool

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's size (a TTY only)."""

    def exit_code(self, wait_s: float) -> int | None:
        """The process's exit code once it has ended, waiting up to ``wait_s``; None while it runs (or for attach)."""

    def close(self) -> None:
        """End the stream: an exec's process (and its children) still running is killed, the socket closed. Idempotent."""


class Runtime(Protocol):
    def ping(self) -> None:
        """Raise RuntimeUnavailable unless the engine answers."""

    def version(self) -> str:
        """The engine as a node reports it in nodeInfo.containerRuntimeVersion: ``docker://20.10.24``."""

    def data_root(self) -> str:
        """The directory holding the engine's images and containers: image GC measures the filesystem it is on."""

    def list_containers(self, pod_key: str | None = None, all_nodes: bool = False) -> list[Container]:
        """Every container (running or not) this agent manages, or just those of one pod ("namespace/name").

        A pod's containers are found by namespace and name, whatever their pod uid, so a pod deleted and
        re-created under the same name shows its old containers too. Only containers labelled for this node
        are returned unless ``all_nodes``.
        """

    def create_sandbox(self, config: SandboxConfig) -> ContainerID:
        """Create and start the pod's sandbox container and return its id.

        Its ``port_mappings`` (the pod's hostPorts) are published on the node unless ``host_network``, and recorded
        either way (the listed sandbox's ``port_mappings``); ContainerCreateError (nothing left) when the engine
        cannot publish one, e.g. a port another container publishes."""

    def create_container(self, sandbox: ContainerID, pod: PodRef, config: ContainerConfig) -> ContainerID:
        """Create (not start) an app or init container joined to the sandbox's namespaces, with its resources,
        ``oom_score_adj`` (never below what the node can give) and ``pids_limit``.

        Raises ImageNotPresent / ContainerCreateError. Pulling is ``ensure_image``'s job.
        """

    def start_container(self, container: ContainerID) -> None: ...

    def stop_container(self, container: ContainerID, grace_period_s: float) -> None:
        """SIGTERM, then SIGKILL after the grace period. A missing container is not an error."""

    def remove_container(self, container: ContainerID) -> None:
        """Remove (forcibly); a missing container is not an error."""

    def image_present(self, image: str) -> bool: ...

    def image_user(self, image: str) -> str:
        """The user a present image runs as (its ``USER``: "1000", "1000:1000", "nobody"; "" for none, root);
        ImageNotPresent when it is not here."""

    def pull_image(self, image: str, auth: RegistryAuth | None = None) -> None:
        """Pull ``image`` (with the registry credential ``auth``, if any); raise ImagePullError on failure, whose
        message holds none of the credential's secrets."""

    def list_images(self) -> list[Image]: ...

    def remove_image(self, image_id: str) -> None:
        """Remove the image and all its tags; ImageInUse while a container uses it; missing is no error."""

    def exec(self, container: ContainerID, command: list[str], timeout_s: float) -> ExecResult:
        """Run ``command`` in a running container; ExecTimeout when it takes longer than ``timeout_s``, the command
        killed then. The output holds its first ``EXEC_OUTPUT_MAX`` bytes."""

    def container_ip(self, container: ContainerID) -> str | None:
        """The pod IP held by a sandbox container (None for host network, or a sandbox without an address)."""

    def host_network(self, container: ContainerID) -> bool:
        """Whether the pod of this container (its sandbox) shares the host's network namespace."""

    def usage(self, containers: list[ContainerID]) -> dict[ContainerID, ContainerUsage]:
        """The usage of each running container of ``containers``; one gone or stopped meanwhile is left out."""

    def disk_usage(self) -> dict[ContainerID, int]:
        """Bytes each of this node's containers holds on the engine's filesystem (writable layer and log files)."""

    def logs(
        self,
        container: ContainerID,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> Iterator[bytes]:
        """Chunks of the container's combined stdout/stderr."""

    def exec_stream(self, container: ContainerID, command: list[str], *, stdin: bool, tty: bool) -> StreamSession:
        """Start ``command`` in a running container with its streams attached (kubelet's streaming exec);
        ContainerNotFound when the container is gone, ContainerRuntimeError when the engine refuses."""

    def attach_stream(self, container: ContainerID, *, stdin: bool, tty: bool) -> StreamSession:
        """Attach to the main process's streams of a running container; closing never stops the container."""
