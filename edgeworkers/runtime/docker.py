"""The Runtime on a Docker engine, through the Docker SDK's low-level ``APIClient``.

Docker SDK objects and exceptions stay in this module: callers see ``runtime.types`` and ``runtime.errors``.

A pod is laid out as dockershim laid it out: a sandbox container named ``k8s_POD_<pod>_<ns>_<uid>_<n>`` holds
the pod's network and IPC namespaces; app and init containers join them. Every container carries the labels
of ``runtime.labels``, so ``list_containers`` rebuilds the node's state from Docker alone.

Listing is the hot path (the PLEG relists every second). One list call gives ids, labels, state and image;
only exit codes, OOM and start/finish times need an inspect, and those never change while a container stays
in one state (the agent is the only one that starts containers), so inspect results are cached per
(id, state) and a relist of an unchanged node costs one list call.
"""
from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import requests
from docker.transport import UnixHTTPAdapter
from docker.utils import convert_filters, kwargs_from_env

from edgeworkers.config import Settings
from edgeworkers.k8s.keyring import RegistryAuth
from edgeworkers.k8s.quantity import to_bytes
from edgeworkers.process import OOM_SCORE_ADJ_MIN, node_oom_score_floor
from edgeworkers.runtime import cgroups, labels
from edgeworkers.runtime.docker_stream import DockerStreamSession
from edgeworkers.runtime.errors import (
    ContainerCreateError,
    ContainerNotFound,
    ContainerRuntimeError,
    ExecTimeout,
    ImageInUse,
    ImageNotPresent,
    ImagePullError,
    RuntimeFault,
    RuntimeUnavailable,
)
from edgeworkers.runtime.protocol import EXEC_OUTPUT_MAX, StreamSession, split_frames
from edgeworkers.runtime.types import (
    Container,
    ContainerConfig,
    ContainerID,
    ContainerSecurity,
    ContainerState,
    ContainerUsage,
    ExecResult,
    Image,
    PodRef,
    PortMapping,
    SandboxConfig,
)

log = logging.getLogger(__name__)

_STATES = {
    "created": ContainerState.CREATED,
    "running": ContainerState.RUNNING,
    "exited": ContainerState.EXITED,
    "dead": ContainerState.EXITED,
}


@dataclass(frozen=True)
class _Details:
    """What inspect adds to a list entry; fixed while the container stays in one state."""

    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    reason: str


MAX_POOL_SIZE = 80
# What ``_container`` reads of an entry of the engine's container list: the rest of each entry (network settings,
# mounts, host config, command, ports), most of its size, is dropped as the list is parsed.
LIST_FIELDS = ("Id", "Image", "ImageID", "Created", "State", "Labels")
USAGE_THREADS = 4  # containers whose stats are asked for at once
# An inspect result no list has shown for this long is dropped (see DockerRuntime._prune).
STALE_S = 600.0
NAME_ATTEMPTS = 5  # names a container may take past dead containers the engine cannot remove (``_create``)


def parse_docker_time(text: str | None) -> datetime | None:
    """Docker's UTC timestamps (``2024-05-01T10:00:00.123456789Z``) as aware datetimes; the zero time is None."""
    if not text or text.startswith("0001-01-01"):
        return None
    stamp, _, fraction = text.removesuffix("Z").partition(".")
    return datetime.fromisoformat(f"{stamp}.{fraction[:6]:0<6}").replace(tzinfo=UTC)


def pod_hostname(name: str) -> str:
    """A pod's hostname as kubelet makes it: at most 63 characters, no trailing '-' or '.'."""
    return name[:63].rstrip("-.")


def port_bindings(mappings: tuple[PortMapping, ...]) -> dict[str, list[Any]]:
    """Docker's port bindings (the SDK's form) of a pod's hostPorts: ``{"80/tcp": [("127.0.0.1", 8080)]}``."""
    bindings: dict[str, list[Any]] = {}
    for m in mappings:
        binding = (m.host_ip, m.host_port) if m.host_ip else m.host_port
        bindings.setdefault(f"{m.container_port}/{m.protocol.lower()}", []).append(binding)
    return bindings


def security_options(security: ContainerSecurity) -> dict[str, Any]:
    """Docker's host config options (the SDK's names) confining a container: ``group_add``, ``read_only`` and the
    ``security_opt`` entries (a seccomp profile goes as its JSON text: the engine's API reads no file)."""
    options = [f"seccomp={security.seccomp}"] if security.seccomp is not None else []
    if security.apparmor is not None:
        options.append(f"apparmor={security.apparmor}")
    if security.no_new_privileges:
        options.append("no-new-privileges")
    return {"group_add": [str(group) for group in security.groups] or None, "read_only": security.read_only_root,
            "security_opt": options or None}


def exit_reason(exit_code: int, oom_killed: bool) -> str:
    """kubelet's terminated reason for an exited container."""
    if oom_killed:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def list_entries(text: str) -> list[dict[str, Any]]:
    """The entries of the engine's container list (a JSON array), each parsed alone and cut to ``LIST_FIELDS``, so a
    node-wide list (the PLEG's, every second) never exists as one whole tree of objects; the strings that repeat
    (label keys and values, images, states) are kept once. ValueError when ``text`` is not such an array."""
    shared: dict[str, str] = {}

    def once(value: Any) -> Any:
        return shared.setdefault(value, value) if isinstance(value, str) else value

    index = _WHITESPACE.match(text).end()
    if not text.startswith("[", index):
        raise json.JSONDecodeError("Expecting '['", text, index)
    index = _WHITESPACE.match(text, index + 1).end()
    entries: list[dict[str, Any]] = []
    while not text.startswith("]", index):
        if entries:
            if not text.startswith(",", index):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, index)
            index = _WHITESPACE.match(text, index + 1).end()
        entry, end = _DECODER.raw_decode(text, index)
        if not isinstance(entry, dict):
            raise json.JSONDecodeError("Expecting an object", text, index)
        index = end
        cut = {field: once(entry[field]) for field in LIST_FIELDS if field in entry}
        if isinstance(cut.get("Labels"), dict):
            cut["Labels"] = {once(key): once(value) for key, value in cut["Labels"].items()}
        entries.append(cut)
        index = _WHITESPACE.match(text, index).end()
    end = _WHITESPACE.match(text, index + 1).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return entries


class _OnePoolAdapter(UnixHTTPAdapter):
    """The SDK's adapter for the engine's socket, with one connection pool for every request: the SDK's own keys a
    pool by URL (one per container inspected, per stats call ...), keeping up to 25, each with idle connections."""

    def get_connection(self, url: str, proxies: Any = None) -> Any:
        return super().get_connection("http+docker://localhost", proxies)


# kubelet's containerLogMaxSize and containerLogMaxFiles.
DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_LOG_MAX_FILES = 5


def log_config(max_size_bytes: int, max_files: int) -> dict[str, Any]:
    """Docker's json-file driver rotating at ``max_size_bytes`` and keeping ``max_files`` files, as kubelet rotates
    container logs; ``max_size_bytes`` 0: no rotation. json-file whatever the daemon's default driver: it is the
    driver that ``docker logs`` (and so ``kubectl logs``) reads across rotated files."""
    if max_size_bytes < 0 or max_files < 1:
        raise ValueError(f"invalid container log rotation: max size {max_size_bytes} bytes (at least 0), "
                         f"max files {max_files} (at least 1)")
    options = {"max-size": str(max_size_bytes), "max-file": str(max_files)} if max_size_bytes else {}
    return {"Type": "json-file", "Config": options}


def log_rotation(config: Settings) -> dict[str, int]:
    """``DockerRuntime``'s rotation arguments from the settings (a bad size is a ValueError naming the setting)."""
    try:
        size = to_bytes(config.container_log_max_size)
    except ValueError:
        raise ValueError(f"EDGEWORKERS_CONTAINER_LOG_MAX_SIZE {config.container_log_max_size!r} is not a quantity "
                         "(e.g. 10Mi)") from None
    return {"log_max_size_bytes": size, "log_max_files": config.container_log_max_files}


def _logs_size(directory: Path) -> int:
    """Bytes of a container's json-file logs (the current file and the rotated ones); 0 when unreadable."""
    total = 0
    for path in directory.glob("*-json.log*"):
        try:
            total += path.stat().st_size
        except OSError:
            pass  # rotated away meanwhile
    return total


class DockerRuntime:
    """``runtime.protocol.Runtime`` on a Docker engine. Thread-safe; connects on first use."""

    def __init__(
        self,
        node_name: str,
        docker_host: str | None = None,
        sandbox_image: str = "edgeworkers/pause:latest",
        timeout_s: float = 60,
        *,
        follow_timeout_s: float | None = None,
        status_timeout_s: float | None = None,
        log_max_size_bytes: int = DEFAULT_LOG_MAX_SIZE,
        log_max_files: int = DEFAULT_LOG_MAX_FILES,
    ) -> None:
        self.node_name = node_name
        # A followed log's reads wait this long (a quiet container sends nothing); every other call ``timeout_s``.
        self._follow_timeout_s = follow_timeout_s or timeout_s
        # The engine's status (``version``, ``data_root``: what the node's heartbeat asks) waits this long only, so a
        # hung engine makes the node not Ready within seconds instead of silencing its heartbeat.
        self._status_timeout_s = status_timeout_s or timeout_s
        self._timeout_s = timeout_s
        self.sandbox_image = sandbox_image
        self._log_config = log_config(log_max_size_bytes, log_max_files)
        # Connections kept to the engine (one pool for all requests, ``_OnePoolAdapter``): enough for the node
        # server's log threads and streams, or the prober's pool and a sync's parallel stops, at once (the SDK's
        # default, 10, makes every request beyond it open and drop a connection of its own). Only the connections
        # once used at the same time are kept.
        self._client_args: dict[str, Any] = {
            **kwargs_from_env(), "timeout": self._status_timeout_s, "version": "auto", "max_pool_size": MAX_POOL_SIZE,
        }
        if docker_host:
            self._client_args["base_url"] = docker_host
        self._client: docker.APIClient | None = None
        self._lock = threading.Lock()
        self._details: dict[tuple[str, str], _Details] = {}
        self._pods: dict[str, str] = {}  # container id -> its pod's key, for the cached ones
        self._seen: dict[str, float] = {}  # container id -> when a list last showed it (monotonic)
        self._oom_floor: int | None = None  # the lowest oom_score_adj this node can give, once known

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- containers ----------------------------------------------------------------------------

    def ping(self) -> None:
        with self._engine("ping"):
            self._api().ping()

    def version(self) -> str:
        with self._engine("version"):
            return f"docker://{self._status('/version')['Version']}"

    def data_root(self) -> str:
        """Docker's data root (``DockerRootDir``): image GC measures the filesystem holding it."""
        with self._engine("info"):
            return self._status("/info")["DockerRootDir"]

    def list_containers(self, pod_key: str | None = None, all_nodes: bool = False) -> list[Container]:
        wanted = [labels.NODE if all_nodes else f"{labels.NODE}={self.node_name}"]
        if pod_key is not None:
            namespace, _, name = pod_key.partition("/")
            wanted += [f"{labels.POD_NAMESPACE}={namespace}", f"{labels.POD_NAME}={name}"]
        with self._engine("list containers"):
            entries = self._list({"label": wanted})
        containers = [c for c in (self._container(entry) for entry in entries) if c is not None]
        self._prune({entry["Id"] for entry in entries}, pod_key, all_nodes)
        return containers

    def create_sandbox(self, config: SandboxConfig) -> ContainerID:
        # The pod's hostPorts are published on its sandbox, which holds its network namespace (as dockershim did);
        # a host-network pod listens on the node's ports itself.
        published = () if config.host_network else config.port_mappings
        host_config = self._host_config(
            network_mode="host" if config.host_network else None,
            ipc_mode="host" if config.host_ipc else "shareable",
            init=False,
            port_bindings=port_bindings(published) or None,
            oom_score_adj=self._oom_score_adj(config.oom_score_adj),
            sysctls=config.sysctls or None,
        )
        container_labels = {
            **config.labels,
            **labels.for_container(
                self.node_name, config.pod, labels.SANDBOX_NAME, labels.TYPE_SANDBOX, 0, config.spec_hash
            ),
            **labels.encode_ports(config.port_mappings),
        }
        ident = self._create(
            labels.docker_name(config.pod, labels.SANDBOX_NAME, 0),
            image=self.sandbox_image,
            labels=container_labels,
            hostname=None if config.host_network else pod_hostname(config.hostname or config.pod.name),
            ports=[(m.container_port, m.protocol.lower()) for m in published] or None,
            host_config=host_config,
        )
        try:
            self.start_container(ident)
        except ContainerRuntimeError:
            self.remove_container(ident)
            raise
        return ident

    def create_container(self, sandbox: ContainerID, pod: PodRef, config: ContainerConfig) -> ContainerID:
        joined = f"container:{sandbox.id}"
        pid_mode = "host" if config.host_pid else f"container:{config.pid_target.id}" if config.pid_target else (
            joined if config.security.share_pid else None)  # an ephemeral container's target's, or the pod's shared one
        host_config = self._host_config(
            network_mode=joined,
            ipc_mode="host" if config.host_ipc else joined,  # the host's IPC namespace cannot be joined through another
            pid_mode=pid_mode,
            cap_add=config.cap_add or None,
            cap_drop=config.cap_drop or None,
            nano_cpus=config.cpu_limit_nano,
            cpu_shares=config.cpu_shares,
            mem_limit=config.memory_limit_bytes,
            memswap_limit=config.memory_limit_bytes,  # no swap, as kubelet sets it
            mem_reservation=config.memory_request_bytes,
            privileged=config.privileged,
            oom_score_adj=self._oom_score_adj(config.oom_score_adj),
            pids_limit=config.pids_limit,
            binds=[f"{m.host_path}:{m.container_path}:{'ro' if m.read_only else 'rw'}" for m in config.mounts],
            **security_options(config.security),
        )
        kind = labels.TYPE_INIT if config.is_init else labels.TYPE_EPHEMERAL if config.is_ephemeral else labels.TYPE_APP
        return self._create(
            labels.docker_name(pod, config.name, config.restart_count),
            image=config.image,
            # Kubernetes `command` replaces the image's ENTRYPOINT (and with it the CMD); `args` replaces CMD.
            entrypoint=config.command or None,
            command=config.args or None,
            environment=dict(config.env),
            working_dir=config.working_dir or None,
            user=config.user or None,
            tty=config.tty,
            stdin_open=config.stdin,
            labels={
                **config.labels,
                **labels.for_container(self.node_name, pod, config.name, kind, config.restart_count, config.spec_hash),
            },
            host_config=host_config,
        )

    def start_container(self, container: ContainerID) -> None:
        self._forget(container)
        with self._engine(f"start container {container}"):
            try:
                self._api().start(container.id)
            except docker.errors.NotFound as exc:
                raise ContainerNotFound(_explain(exc)) from exc
            except docker.errors.APIError as exc:
                raise ContainerCreateError(_explain(exc)) from exc

    def stop_container(self, container: ContainerID, grace_period_s: float) -> None:
        grace = max(0, math.ceil(grace_period_s))
        with self._engine(f"stop container {container}"):
            try:
                self._api().stop(container.id, timeout=grace)
            except docker.errors.NotFound:
                pass

    def remove_container(self, container: ContainerID) -> None:
        self._forget(container)
        with self._engine(f"remove container {container}"):
            try:
                self._api().remove_container(container.id, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "already in progress" not in _explain(exc):
                    raise

    def exec(self, container: ContainerID, command: list[str], timeout_s: float) -> ExecResult:
        """Run ``command`` in the container, as CRI's ExecSync: ExecTimeout when it is not done within ``timeout_s``,
        and its process killed then with its children (Docker has no call to stop an exec: ``docker_stream``); of its
        output, read to the end, the first ``EXEC_OUTPUT_MAX`` bytes are kept."""
        deadline = time.monotonic() + timeout_s
        what = f"exec {command} in {container}"
        session = self.exec_stream(container, command, stdin=False, tty=False)
        try:
            with self._engine(what):
                output = _read_output(session.sock, deadline, what)
                code = session.exit_code(max(0.0, deadline - time.monotonic()))
            if code is None:
                raise ExecTimeout(f"{what} timed out after {timeout_s:g}s")
            return ExecResult(code, output)
        finally:
            session.close()  # kills what still runs

    def exec_stream(self, container: ContainerID, command: list[str], *, stdin: bool, tty: bool) -> StreamSession:
        api = self._api()
        with self._engine(f"exec in {container}"):
            try:
                exec_id = api.exec_create(container.id, command, stdout=True, stderr=True, stdin=stdin, tty=tty)["Id"]
                hijacked = api.exec_start(exec_id, tty=tty, socket=True)
            except docker.errors.NotFound as exc:
                raise ContainerNotFound(_explain(exc)) from exc
        return DockerStreamSession(api, container.id, exec_id, hijacked, tty)

    def attach_stream(self, container: ContainerID, *, stdin: bool, tty: bool) -> StreamSession:
        api = self._api()
        with self._engine(f"attach to {container}"):
            try:
                has_tty = bool(api.inspect_container(container.id)["Config"].get("Tty"))
                params = {"stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1}
                hijacked = api.attach_socket(container.id, params=params)
            except docker.errors.NotFound as exc:
                raise ContainerNotFound(_explain(exc)) from exc
        return DockerStreamSession(api, container.id, None, hijacked, has_tty)

    def usage(self, containers: list[ContainerID]) -> dict[ContainerID, ContainerUsage]:
        """From the containers' cgroup files when this host has them (``runtime/cgroups.py``), else Docker's one-shot
        stats (no second sample inside the engine), a few containers at once."""
        sampled = {c: cgroups.read_usage(c.id) for c in containers}
        missing = [c for c, usage in sampled.items() if usage is None]
        if missing:
            with ThreadPoolExecutor(min(USAGE_THREADS, len(missing)), thread_name_prefix="docker-stats") as pool:
                sampled.update(zip(missing, pool.map(self._stats_usage, missing)))
        return {container: usage for container, usage in sampled.items() if usage is not None}

    def disk_usage(self) -> dict[ContainerID, int]:
        """One list call with sizes (the writable layers), plus each container's log files under the data root."""
        with self._engine("list containers with sizes"):
            listed = self._api().containers(all=True, size=True, filters={"label": f"{labels.NODE}={self.node_name}"})
        root = Path(self.data_root()) / "containers"
        return {
            ContainerID("docker", entry["Id"]): int(entry.get("SizeRw") or 0) + _logs_size(root / entry["Id"])
            for entry in listed
        }

    def _stats_usage(self, container: ContainerID) -> ContainerUsage | None:
        try:
            with self._engine(f"stats of container {container}"):
                stats = self._api().stats(container.id, stream=False, one_shot=True)
        except ContainerRuntimeError:
            return None  # gone or stopped meanwhile
        total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        memory = stats.get("memory_stats") or {}
        if total is None or "usage" not in memory:
            return None  # not running: Docker answers empty stats
        details = memory.get("stats") or {}
        inactive = details.get("total_inactive_file", details.get("inactive_file", 0))  # cgroup v1, v2
        return ContainerUsage(int(total), max(0, int(memory["usage"]) - int(inactive)))

    def _network_of(self, container: ContainerID) -> dict[str, Any]:
        """The inspection of the container holding ``container``'s network namespace (its pod's sandbox)."""
        with self._engine(f"inspect container {container}"):
            try:
                info = self._api().inspect_container(container.id)
                mode = info["HostConfig"]["NetworkMode"] or ""
                if mode.startswith("container:"):
                    info = self._api().inspect_container(mode.removeprefix("container:"))
            except docker.errors.NotFound as exc:
                raise ContainerNotFound(_explain(exc)) from exc
        return info

    def host_network(self, container: ContainerID) -> bool:
        return self._network_of(container)["HostConfig"]["NetworkMode"] == "host"

    def container_ip(self, container: ContainerID) -> str | None:
        info = self._network_of(container)
        if info["HostConfig"]["NetworkMode"] == "host":
            return None
        settings = info["NetworkSettings"]
        addresses = [settings.get("IPAddress")] + [n.get("IPAddress") for n in settings["Networks"].values()]
        return next((address for address in addresses if address), None)

    def logs(
        self,
        container: ContainerID,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> Iterator[bytes]:
        params = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": int(timestamps),
                  "tail": "all" if tail is None else tail}  # fmt: skip
        if since is not None:
            params["since"] = since.timestamp()  # a float keeps sub-second precision
        with self._engine(f"logs of {container}"):
            api = self._api()
            # The SDK's ``logs`` has no per-call timeout: its request, with the followed log's own.
            response = api._get(api._url("/containers/{0}/logs", container.id), params=params, stream=True,
                                timeout=self._follow_timeout_s if follow else api.timeout)  # fmt: skip
            try:
                stream = api._get_result(container.id, True, response)
            except docker.errors.NotFound as exc:
                raise ContainerNotFound(_explain(exc)) from exc
        return self._guarded(stream, f"logs of {container}")

    # --- images --------------------------------------------------------------------------------

    def image_present(self, image: str) -> bool:
        with self._engine(f"inspect image {image}"):
            try:
                self._api().inspect_image(image)
            except docker.errors.ImageNotFound:
                return False
        return True

    def image_user(self, image: str) -> str:
        with self._engine(f"inspect image {image}"):
            try:
                return self._api().inspect_image(image)["Config"].get("User") or ""
            except docker.errors.ImageNotFound as exc:
                raise ImageNotPresent(_explain(exc)) from exc

    def pull_image(self, image: str, auth: RegistryAuth | None = None) -> None:
        def failed(message: str) -> ImagePullError:
            return ImagePullError(f"pulling {image}: {auth.redact(message) if auth else message}")

        with self._engine(f"pull {image}"):
            try:
                for event in self._api().pull(image, stream=True, decode=True,
                                              auth_config=auth.docker() if auth else None):
                    if "error" in event:
                        raise failed(str(event["error"]))
            except docker.errors.APIError as exc:
                raise failed(_explain(exc)) from None

    def list_images(self) -> list[Image]:
        with self._engine("list images"):
            entries = self._api().images()
        return [
            Image(
                id=entry["Id"],
                tags=[tag for tag in entry.get("RepoTags") or [] if tag != "<none>:<none>"],
                size_bytes=entry.get("Size", 0),
                created_at=datetime.fromtimestamp(entry["Created"], UTC) if entry.get("Created") else None,
            )
            for entry in entries
        ]

    def remove_image(self, image_id: str) -> None:
        """Remove the image with all its tags; ImageInUse while any container uses it."""
        with self._engine(f"remove image {image_id}"):
            api = self._api()
            try:
                image = api.inspect_image(image_id)["Id"]
            except docker.errors.ImageNotFound:
                return
            users = api.containers(all=True, filters={"ancestor": image})
            if users:
                raise ImageInUse(f"image {image_id} is in use by container {users[0]['Names'][0].lstrip('/')}")
            try:
                api.remove_image(image, force=True)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    raise ImageInUse(f"image {image_id}: {_explain(exc)}") from exc
                raise

    # --- internals -----------------------------------------------------------------------------

    def _api(self) -> docker.APIClient:
        with self._lock:
            if self._client is None:
                try:  # its API version is asked with the status timeout: a hung engine holds the lock that long only
                    client = docker.APIClient(**self._client_args)
                except docker.errors.DockerException as exc:
                    raise RuntimeUnavailable(f"Docker engine unavailable: {exc}") from exc
                client.timeout = self._timeout_s
                adapter = client.adapters.get("http+docker://")
                if type(adapter) is UnixHTTPAdapter:
                    one_pool = _OnePoolAdapter(adapter.socket_path, self._timeout_s, max_pool_size=adapter.max_pool_size)
                    client.mount("http+docker://", one_pool)
                    adapter.close()
                self._client = client
            return self._client

    def _status(self, path: str) -> dict[str, Any]:
        """GET one of the engine's status documents, waiting ``status_timeout_s`` at most."""
        api = self._api()
        return api._result(api._get(api._url(path), timeout=self._status_timeout_s), json=True)

    def _list(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """``APIClient.containers(all=True, filters=filters)``, each entry cut to ``LIST_FIELDS`` as it is parsed."""
        api = self._api()
        params = {"limit": -1, "all": 1, "size": 0, "trunc_cmd": 0, "filters": convert_filters(filters)}
        response = api._get(api._url("/containers/json"), params=params)
        api._raise_for_status(response)
        text = response.content.decode()
        del response  # its bytes: not kept while the text is parsed
        try:
            return list_entries(text)
        except ValueError as exc:  # as the SDK's ``response.json()`` fails on it
            raise requests.exceptions.InvalidJSONError(f"list containers: {exc}") from exc

    @contextmanager
    def _engine(self, action: str) -> Iterator[None]:
        """Map what escapes a block of SDK calls: connection faults -> RuntimeUnavailable, the rest -> ours."""
        try:
            yield
        except RuntimeFault:
            raise
        except docker.errors.APIError as exc:
            raise ContainerRuntimeError(f"{action}: {_explain(exc)}") from exc
        except docker.errors.DockerException as exc:  # the SDK refused the request before sending it
            raise ContainerRuntimeError(f"{action}: {exc}") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise RuntimeUnavailable(f"{action}: Docker engine unavailable: {exc}") from exc

    def _guarded(self, stream: Iterator[bytes], action: str) -> Iterator[bytes]:
        with self._engine(action):
            yield from stream

    def _oom_score_adj(self, wanted: int | None) -> int | None:
        """``wanted``, raised to the lowest score this node can give (``process.lowest_oom_score_adj``), with a
        warning the first time: without CAP_SYS_RESOURCE, runc would refuse to start the container at all."""
        if wanted is None:
            return None
        if self._oom_floor is None:
            self._oom_floor = node_oom_score_floor()
            if self._oom_floor > OOM_SCORE_ADJ_MIN:
                log.warning("this node cannot lower a process's oom_score_adj (no CAP_SYS_RESOURCE): containers and "
                            "sandboxes get no score below %d", self._oom_floor)
        return max(wanted, self._oom_floor)

    def _host_config(self, **kwargs: Any) -> dict[str, Any]:
        try:
            return self._api().create_host_config(log_config=self._log_config, **kwargs)
        except (docker.errors.DockerException, TypeError, ValueError) as exc:
            raise ContainerCreateError(f"invalid container settings: {exc}") from exc

    def _create(self, name: str, **kwargs: Any) -> ContainerID:
        """Create a container named ``name``, first removing a dead container of that name.

        A dead container the engine cannot remove (its root filesystem still busy after an engine restart left its
        shim behind) is left to the container GC, and the new one takes the next attempt's name (``<name>_1``, ...):
        as kubelet's attempt numbers, an unremovable dead sandbox never blocks its pod. A running one is a conflict."""
        for attempt in range(NAME_ATTEMPTS):
            candidate = name if attempt == 0 else f"{name}_{attempt}"
            created = self._try_create(candidate, kwargs)
            if isinstance(created, ContainerID):
                return created
            if not self._remove_dead(candidate, created):
                continue
            created = self._try_create(candidate, kwargs)
            if isinstance(created, ContainerID):
                return created
            raise ContainerCreateError(_explain(created))
        raise ContainerCreateError(f"create container {name}: the dead containers of its {NAME_ATTEMPTS} names "
                                   f"cannot be removed")

    def _try_create(self, name: str, kwargs: dict[str, Any]) -> ContainerID | docker.errors.APIError:
        """The container created, or the name conflict (409) that kept it from being created."""
        with self._engine(f"create container {name}"):
            try:
                return ContainerID("docker", self._api().create_container(name=name, **kwargs)["Id"])
            except docker.errors.ImageNotFound as exc:
                raise ImageNotPresent(_explain(exc)) from exc
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise ContainerCreateError(_explain(exc)) from exc
                return exc

    def _remove_dead(self, name: str, conflict: docker.errors.APIError) -> bool:
        """Remove the dead container named ``name``: True when the name is free, False when the engine could not
        remove it (logged); ContainerCreateError when it runs."""
        with self._engine(f"inspect container {name}"):
            try:
                existing = self._api().inspect_container(name)
            except docker.errors.NotFound:
                return True  # removed meanwhile
        if existing["State"]["Running"]:
            raise ContainerCreateError(_explain(conflict))
        try:
            self.remove_container(ContainerID("docker", existing["Id"]))
        except ContainerRuntimeError as exc:  # the engine answered and refused: not when it is away
            log.warning("dead container %s cannot be removed (left to the container GC): %s", name, exc)
            return False
        return True

    def _container(self, entry: dict[str, Any]) -> Container | None:
        entry_labels = entry.get("Labels") or {}
        pod = labels.pod_of(entry_labels)
        if pod is None:
            return None
        state = _STATES.get(entry["State"], ContainerState.UNKNOWN)
        details = self._inspect(entry["Id"], entry["State"], pod.key) if state != ContainerState.CREATED else None
        kind = entry_labels.get(labels.CONTAINER_TYPE, labels.TYPE_APP)
        return Container(
            id=ContainerID("docker", entry["Id"]),
            pod=pod,
            name=entry_labels.get(labels.CONTAINER_NAME, ""),
            image=entry["Image"],
            image_id=entry.get("ImageID", ""),
            state=state,
            restart_count=int(entry_labels.get(labels.RESTART_COUNT) or 0),
            spec_hash=entry_labels.get(labels.SPEC_HASH, ""),
            is_sandbox=kind == labels.TYPE_SANDBOX,
            is_init=kind == labels.TYPE_INIT,
            is_ephemeral=kind == labels.TYPE_EPHEMERAL,
            created_at=details.created_at if details else datetime.fromtimestamp(entry["Created"], UTC),
            started_at=details.started_at if details else None,
            finished_at=details.finished_at if details else None,
            exit_code=details.exit_code if details else None,
            reason=details.reason if details else "",
            labels=entry_labels,  # the entry's own (``_list`` made it)
            port_mappings=labels.decode_ports(entry_labels),
        )

    def _inspect(self, ident: str, state: str, pod_key: str) -> _Details | None:
        with self._lock:
            cached = self._details.get((ident, state))
        if cached is not None:
            return cached
        with self._engine(f"inspect container {ident}"):
            try:
                info = self._api().inspect_container(ident)
            except docker.errors.NotFound:
                return None  # removed since the list call
        status = info["State"]
        exited = _STATES.get(status["Status"]) == ContainerState.EXITED
        started = parse_docker_time(status.get("StartedAt"))
        finished = parse_docker_time(status.get("FinishedAt")) if exited else None
        if started and finished and finished < started:  # Docker stamps StartedAt late for instant exits
            finished = started
        details = _Details(
            created_at=parse_docker_time(info.get("Created")),
            started_at=started,
            finished_at=finished,
            exit_code=status["ExitCode"] if exited else None,
            reason=exit_reason(status["ExitCode"], status.get("OOMKilled", False)) if exited else "",
        )
        if status["Status"] == state:
            with self._lock:
                self._details[(ident, state)] = details
                self._pods[ident] = pod_key
                self._seen[ident] = time.monotonic()
        return details

    def _prune(self, live: set[str], pod_key: str | None, all_nodes: bool) -> None:
        """Drop inspect results of containers gone: all of them after a node-wide list (the PLEG's relist, every
        second), those of the listed pod after a per-pod list; and, whatever is listed, any not seen by a list for
        ``STALE_S`` (containers of pods this process never lists again, removed by another process)."""
        now = time.monotonic()
        with self._lock:
            for ident in live:
                self._seen[ident] = now
            if all_nodes:
                gone = set()
            elif pod_key is None:
                gone = {ident for ident, _ in self._details if ident not in live}
            else:
                gone = {ident for ident, key in self._pods.items() if key == pod_key and ident not in live}
            gone |= {ident for ident, seen in self._seen.items() if now - seen > STALE_S}
            for key in [key for key in self._details if key[0] in gone]:
                del self._details[key]
            for ident in gone:
                self._pods.pop(ident, None)
                self._seen.pop(ident, None)

    def _forget(self, container: ContainerID) -> None:
        with self._lock:
            for key in [key for key in self._details if key[0] == container.id]:
                del self._details[key]
            self._pods.pop(container.id, None)
            self._seen.pop(container.id, None)


def _read_output(sock: socket.socket, deadline: float, what: str) -> bytes:
    """An exec's output (its multiplexed stream) read to the end by ``deadline`` (ExecTimeout past it): the first
    ``EXEC_OUTPUT_MAX`` bytes of it, the rest read and dropped (a flood of output costs no memory)."""
    output, frames = bytearray(), bytearray()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExecTimeout(f"{what} timed out")
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(output)
            frames += chunk
            for payload in split_frames(frames):
                output += payload[: max(0, EXEC_OUTPUT_MAX - len(output))]
    except TimeoutError as exc:
        raise ExecTimeout(f"{what} timed out") from exc


def _explain(exc: docker.errors.APIError) -> str:
    """The engine's own message, without the SDK's HTTP wrapping."""
    return str(exc.explanation or exc)


__all__ = ["DockerRuntime", "exit_reason", "parse_docker_time", "pod_hostname", "port_bindings", "security_options"]
