"""An in-memory Runtime for unit tests: records every call and lets a test steer the engine.

Behaves like ``DockerRuntime`` where tests can tell (names, labels, states, errors), without a daemon:

    fake = FakeRuntime(node_name="n1", clock=clock)   # images: the sandbox image and busybox
    sandbox = fake.create_sandbox(SandboxConfig(pod))
    app = fake.create_container(sandbox, pod, ContainerConfig("app", "busybox"))
    fake.start_container(app)
    fake.exit(app, 1)                      # the container dies with exit code 1 ("Error")
    fake.unavailable = True                # every call now raises RuntimeUnavailable
    fake.fail("create_container", ContainerCreateError("boom"))   # the next such call raises it

``calls`` holds one tuple of strings per call, e.g. ``("create_container", "default/web", "app")``,
``("stop_container", "docker://<id>", "30")``; see each method for its shape.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edgeworkers.k8s.keyring import RegistryAuth
from edgeworkers.runtime import labels
from edgeworkers.runtime.errors import (
    ContainerCreateError,
    ContainerNotFound,
    ContainerRuntimeError,
    ImageInUse,
    ImageNotPresent,
    ImagePullError,
    RuntimeUnavailable,
)
from edgeworkers.runtime.protocol import EXEC_OUTPUT_MAX, StreamSession
from edgeworkers.runtime.types import (
    ANY_IP,
    Container,
    ContainerConfig,
    ContainerID,
    ContainerState,
    ContainerUsage,
    ExecResult,
    Image,
    PodRef,
    PortMapping,
    SandboxConfig,
)

Clock = Callable[[], "datetime | float"]
ExecHandler = Callable[[Container, list[str]], ExecResult]
# A streaming exec's process: given the container, the command, its end of the stream and whether it has a TTY,
# it reads stdin and writes output (Docker's frames unless a TTY) on the socket, and returns the exit code.
StreamHandler = Callable[[Container, list[str], socket.socket, bool], int]


def frame(stream: int, data: bytes) -> bytes:
    """One frame of Docker's multiplexed stream (1 stdout, 2 stderr)."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def normalize_image(ref: str) -> str:
    """``busybox`` -> ``busybox:latest``, as Docker resolves a reference without tag or digest."""
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in ref else f"{ref}:latest"


def _image_id(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


def _stamp(at: datetime) -> bytes:
    """Docker's log timestamp prefix: RFC 3339 in UTC, then a space."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z").encode() + b" "


@dataclass
class _Record:
    id: ContainerID
    docker_name: str
    pod: PodRef
    name: str
    image: str
    image_id: str
    kind: str
    labels: dict[str, str]
    created_at: datetime
    config: ContainerConfig | SandboxConfig
    sandbox: ContainerID | None = None
    ip: str | None = None
    state: ContainerState = ContainerState.CREATED
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    log: list[tuple[datetime, bytes]] = field(default_factory=list)

    def view(self) -> Container:
        return Container(
            id=self.id,
            pod=self.pod,
            name=self.name,
            image=self.image,
            image_id=self.image_id,
            state=self.state,
            restart_count=int(self.labels[labels.RESTART_COUNT]),
            spec_hash=self.labels[labels.SPEC_HASH],
            is_sandbox=self.kind == labels.TYPE_SANDBOX,
            is_init=self.kind == labels.TYPE_INIT,
            is_ephemeral=self.kind == labels.TYPE_EPHEMERAL,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_code=self.exit_code,
            reason=self.reason,
            labels=dict(self.labels),
            port_mappings=labels.decode_ports(self.labels),
        )


class FakeRuntime:
    """The Runtime protocol in memory. Thread-safe, so worker-pool code can use it too.

    ``images`` are present locally (default: the sandbox image and busybox); ``registry`` can be pulled.
    ``clock`` returns a datetime or epoch seconds and stamps every created/started/finished time.
    """

    def __init__(
        self,
        node_name: str = "fake-node",
        clock: Clock | None = None,
        images: Iterable[str] | None = None,
        sandbox_image: str = "edgeworkers/pause:latest",
        registry: Iterable[str] = (),
        data_root: str = "/",
    ) -> None:
        self.node_name = node_name
        self._data_root = data_root
        self.sandbox_image = sandbox_image
        self.calls: list[tuple[str, ...]] = []
        self.unavailable = False
        # Exit code a stopped container ends with: 137 (SIGKILL) like a process ignoring SIGTERM.
        self.stop_exit_code = 137
        # What exec answers; replace to script probes. Default: exit 0, no output.
        self.exec_handler: ExecHandler = lambda _container, _command: ExecResult(0, b"")
        # What a streaming exec does; replace to script it. Default: exec_handler's answer on stdout.
        self.stream_handler: StreamHandler = self._answer_stream
        self.open_streams: set[FakeStreamSession] = set()  # started and not closed
        self._clock = clock or (lambda: datetime.now(UTC))
        self._images: dict[str, Image] = {}
        self._registry = {normalize_image(ref) for ref in registry}  # what pull_image can fetch
        self._logins: dict[str, tuple[str, str]] = {}  # private images of the registry: the login they need
        self.pull_registries: list[str | None] = []  # the location of the credential each pull used (None: none)
        self._containers: dict[ContainerID, _Record] = {}
        self.usages: dict[ContainerID, ContainerUsage] = {}  # what usage() answers, set by tests
        self.disk_usages: dict[ContainerID, int] = {}  # what disk_usage() answers, set by tests
        self.image_users: dict[str, str] = {}  # each image's USER by ref, set by tests; default "" (root)
        self._failures: dict[str, list[Exception]] = {}
        self._ids = itertools.count(1)
        self._hosts = itertools.count(1)  # pod IPs 10.88.x.y, one per non-host-network sandbox
        self._lock = threading.RLock()
        for ref in (sandbox_image, "busybox") if images is None else images:
            self.add_image(ref)

    # --- steering, for tests -------------------------------------------------------------------

    def add_image(self, ref: str, size_bytes: int = 1_000_000) -> Image:
        """Make ``ref`` present locally (tags sharing an id are not modelled: one image per ref)."""
        ref = normalize_image(ref)
        image = Image(_image_id(ref), [ref], size_bytes, self._now())
        self._images[ref] = image
        return image

    def add_to_registry(self, ref: str, login: tuple[str, str] | None = None) -> None:
        """Let ``pull_image(ref)`` succeed (only with the credential ``login``, (username, password), if given)."""
        self._registry.add(normalize_image(ref))
        if login is not None:
            self._logins[normalize_image(ref)] = login

    def fail(self, method: str, error: Exception) -> None:
        """Make the next call of ``method`` raise ``error`` (queue several for several calls)."""
        self._failures.setdefault(method, []).append(error)

    def exit(self, container: ContainerID, code: int, reason: str | None = None) -> None:
        """The container's process ends with ``code``; reason defaults as Docker's would read."""
        with self._lock:
            record = self._get(container)
            self._finish(record, code, reason or ("Completed" if code == 0 else "Error"))

    def write_log(self, container: ContainerID, data: bytes) -> None:
        """Append output to the container's log, stamped with the clock."""
        with self._lock:
            self._get(container).log.append((self._now(), data))

    def calls_named(self, method: str) -> list[tuple[str, ...]]:
        return [call for call in self.calls if call[0] == method]

    def config_of(self, container: ContainerID) -> ContainerConfig | SandboxConfig:
        """The config a container was created from."""
        return self._get(container).config

    # --- the Runtime protocol ------------------------------------------------------------------

    def ping(self) -> None:
        self._enter("ping")

    def version(self) -> str:
        self._enter("version")
        return "fake://0.1.0"

    def data_root(self) -> str:
        self._enter("data_root")
        return self._data_root

    def list_containers(self, pod_key: str | None = None, all_nodes: bool = False) -> list[Container]:
        """Call: ``("list_containers", "<ns>/<name>" or "")``."""
        self._enter("list_containers", pod_key or "")
        with self._lock:
            return [
                record.view()
                for record in self._containers.values()
                if (pod_key is None or record.pod.key == pod_key)
                and (all_nodes or record.labels[labels.NODE] == self.node_name)
            ]

    def create_sandbox(self, config: SandboxConfig) -> ContainerID:
        """Call: ``("create_sandbox", "<ns>/<name>")``. Creates and starts it."""
        self._enter("create_sandbox", config.pod.key)
        with self._lock:
            clash = None if config.host_network else self._published_clash(config.port_mappings)
            if clash is not None:  # as Docker refuses to publish a port a running container publishes
                raise ContainerCreateError(f"driver failed programming external connectivity: Bind for "
                                           f"{clash.host_ip or ANY_IP}:{clash.host_port} failed: port is already allocated")
            record = self._create(
                config.pod, labels.SANDBOX_NAME, self.sandbox_image, labels.TYPE_SANDBOX, 0,
                config.spec_hash, config,
            )
            record.labels.update(labels.encode_ports(config.port_mappings))
            if not config.host_network:
                host = next(self._hosts)
                record.ip = f"10.88.{host // 254}.{host % 254 + 1}"
            self._start(record)
            return record.id

    def create_container(self, sandbox: ContainerID, pod: PodRef, config: ContainerConfig) -> ContainerID:
        """Call: ``("create_container", "<ns>/<name>", "<container name>")``."""
        self._enter("create_container", pod.key, config.name)
        with self._lock:
            if sandbox not in self._containers:
                raise ContainerCreateError(f"sandbox {sandbox} of pod {pod.key} does not exist")
            kind = labels.TYPE_INIT if config.is_init else labels.TYPE_EPHEMERAL if config.is_ephemeral else \
                labels.TYPE_APP
            record = self._create(
                pod, config.name, config.image, kind, config.restart_count, config.spec_hash, config
            )
            record.sandbox = sandbox
            return record.id

    def start_container(self, container: ContainerID) -> None:
        """Call: ``("start_container", "docker://<id>")``."""
        self._enter("start_container", str(container))
        with self._lock:
            self._start(self._get(container))

    def stop_container(self, container: ContainerID, grace_period_s: float) -> None:
        """Call: ``("stop_container", "docker://<id>", "<grace:g>")``; ends with ``stop_exit_code``."""
        self._enter("stop_container", str(container), f"{grace_period_s:g}")
        with self._lock:
            record = self._containers.get(container)
            if record and record.state == ContainerState.RUNNING:
                code = self.stop_exit_code
                self._finish(record, code, "Completed" if code == 0 else "Error")

    def remove_container(self, container: ContainerID) -> None:
        """Call: ``("remove_container", "docker://<id>")``."""
        self._enter("remove_container", str(container))
        with self._lock:
            self._containers.pop(container, None)

    def image_present(self, image: str) -> bool:
        self._enter("image_present", image)
        return normalize_image(image) in self._images

    def image_user(self, image: str) -> str:
        self._enter("image_user", image)
        ref = normalize_image(image)
        if ref not in self._images:
            raise ImageNotPresent(f"No such image: {image}")
        return next((user for image_ref, user in self.image_users.items() if normalize_image(image_ref) == ref), "")

    def pull_image(self, image: str, auth: RegistryAuth | None = None) -> None:
        self._enter("pull_image", image)
        self.pull_registries.append(auth.registry if auth else None)
        ref = normalize_image(image)
        if ref not in self._registry:
            raise ImagePullError(f"pull access denied for {image}: repository does not exist")
        login = self._logins.get(ref)
        if login is not None and (auth is None or (auth.username, auth.password) != login):
            raise ImagePullError(f"pulling {image}: unauthorized: authentication required")
        self.add_image(ref)

    def list_images(self) -> list[Image]:
        self._enter("list_images")
        return list(self._images.values())

    def remove_image(self, image_id: str) -> None:
        """Call: ``("remove_image", "<id or ref>")``; a missing image is not an error."""
        self._enter("remove_image", image_id)
        with self._lock:
            wanted = normalize_image(image_id)
            refs = [ref for ref, image in self._images.items() if image_id == image.id or ref == wanted]
            ids = {self._images[ref].id for ref in refs}
            users = [r.docker_name for r in self._containers.values() if r.image_id in ids]
            if users:
                raise ImageInUse(f"image {image_id} is in use by container {users[0]}")
            for ref in refs:
                del self._images[ref]

    def exec(self, container: ContainerID, command: list[str], timeout_s: float) -> ExecResult:
        """Call: ``("exec", "docker://<id>", *command)``; answered by ``exec_handler``."""
        self._enter("exec", str(container), *command)
        with self._lock:
            record = self._get(container)
            if record.state != ContainerState.RUNNING:
                raise ContainerRuntimeError(f"container {container} is not running")
            view = record.view()
        result = self.exec_handler(view, command)
        return ExecResult(result.exit_code, result.output[:EXEC_OUTPUT_MAX])

    def exec_stream(self, container: ContainerID, command: list[str], *, stdin: bool, tty: bool) -> StreamSession:
        """Call: ``("exec_stream", "docker://<id>", *command)``; the process is ``stream_handler`` on a thread."""
        self._enter("exec_stream", str(container), *command)
        with self._lock:
            record = self._get(container)
            if record.state != ContainerState.RUNNING:
                raise ContainerRuntimeError(f"container {container} is not running")
            view = record.view()
        session = FakeStreamSession(self, lambda sock: self.stream_handler(view, command, sock, tty), tty, True)
        self.open_streams.add(session)
        return session

    def attach_stream(self, container: ContainerID, *, stdin: bool, tty: bool) -> StreamSession:
        """Call: ``("attach_stream", "docker://<id>")``; the container's output is what ``stream_handler`` writes."""
        self._enter("attach_stream", str(container))
        with self._lock:
            view = self._get(container).view()
        session = FakeStreamSession(self, lambda sock: self.stream_handler(view, [], sock, tty), tty, False)
        self.open_streams.add(session)
        return session

    def _answer_stream(self, container: Container, command: list[str], sock: socket.socket, tty: bool) -> int:
        result = self.exec_handler(container, command)
        sock.sendall(result.output if tty else frame(1, result.output))
        return result.exit_code

    def disk_usage(self) -> dict[ContainerID, int]:
        """Call: ``("disk_usage",)``; answered from ``disk_usages`` (tests set it) for the containers that exist."""
        self._enter("disk_usage")
        with self._lock:
            return {c: size for c, size in self.disk_usages.items() if c in self._containers}

    def usage(self, containers: list[ContainerID]) -> dict[ContainerID, ContainerUsage]:
        """Call: ``("usage", "docker://<id>", ...)``; answered from ``usages`` (tests set it), for running containers only."""
        self._enter("usage", *(str(c) for c in containers))
        with self._lock:
            return {
                c: self.usages[c] for c in containers
                if c in self.usages and c in self._containers and self._containers[c].state == ContainerState.RUNNING
            }

    def host_network(self, container: ContainerID) -> bool:
        self._enter("host_network", str(container))
        with self._lock:
            record = self._get(container)
            if record.sandbox is not None:
                record = self._get(record.sandbox)
            return isinstance(record.config, SandboxConfig) and record.config.host_network

    def container_ip(self, container: ContainerID) -> str | None:
        self._enter("container_ip", str(container))
        with self._lock:
            record = self._get(container)
            if record.sandbox is not None:
                record = self._get(record.sandbox)
            return record.ip

    def logs(
        self,
        container: ContainerID,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> Iterator[bytes]:
        """The chunks written with ``write_log``, one per line (``follow`` returns what is there)."""
        self._enter("logs", str(container))
        with self._lock:
            entries = [(at, data) for at, data in self._get(container).log if since is None or at >= since]
        lines = [(at, line) for at, data in entries for line in data.splitlines(keepends=True)]
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return iter([_stamp(at) + line if timestamps else line for at, line in lines])

    # --- internals -----------------------------------------------------------------------------

    def _enter(self, method: str, *args: str) -> None:
        with self._lock:
            self.calls.append((method, *args))
            if self.unavailable:
                raise RuntimeUnavailable("Cannot connect to the Docker daemon (fake runtime is unavailable)")
            queued = self._failures.get(method)
            if queued:
                raise queued.pop(0)

    def _now(self) -> datetime:
        now = self._clock()
        return now if isinstance(now, datetime) else datetime.fromtimestamp(now, UTC)

    def _get(self, container: ContainerID) -> _Record:
        try:
            return self._containers[container]
        except KeyError:
            raise ContainerNotFound(f"no such container: {container}") from None

    def _published_clash(self, wanted: tuple[PortMapping, ...]) -> PortMapping | None:
        """The first of ``wanted`` that a running sandbox publishes already."""
        published = [m for r in self._containers.values() if r.state == ContainerState.RUNNING
                     and isinstance(r.config, SandboxConfig) and not r.config.host_network for m in r.config.port_mappings]
        return next((m for m in wanted for held in published if m.overlaps(held)), None)

    def _create(
        self,
        pod: PodRef,
        name: str,
        image: str,
        kind: str,
        restart_count: int,
        spec_hash: str,
        config: ContainerConfig | SandboxConfig,
    ) -> _Record:
        local = self._images.get(normalize_image(image))
        if local is None:
            raise ImageNotPresent(f"No such image: {image}")
        docker_name = labels.docker_name(pod, name, restart_count)
        for other in list(self._containers.values()):
            if other.docker_name == docker_name:
                if other.state == ContainerState.RUNNING:
                    raise ContainerCreateError(f'Conflict. The container name "/{docker_name}" is already in use')
                del self._containers[other.id]  # a dead container of the same name: Docker's would be removed
        ident = ContainerID("docker", hashlib.sha256(f"{self.node_name}/{next(self._ids)}".encode()).hexdigest())
        record = _Record(
            id=ident,
            docker_name=docker_name,
            pod=pod,
            name=name,
            image=image,
            image_id=local.id,
            kind=kind,
            labels={**(config.labels if isinstance(config, ContainerConfig) else {}),
                    **labels.for_container(self.node_name, pod, name, kind, restart_count, spec_hash)},
            created_at=self._now(),
            config=config,
        )
        self._containers[ident] = record
        return record

    def _start(self, record: _Record) -> None:
        record.state = ContainerState.RUNNING
        record.started_at = self._now()
        record.finished_at = None
        record.exit_code = None
        record.reason = ""

    def _finish(self, record: _Record, code: int, reason: str) -> None:
        record.state = ContainerState.EXITED
        record.finished_at = self._now()
        record.exit_code = code
        record.reason = reason


__all__ = ["FakeRuntime", "normalize_image"]


class FakeStreamSession:
    """A stream whose process is a function on a thread, joined by a socket pair; ``resizes`` records the sizes."""

    def __init__(self, runtime: FakeRuntime, process: Callable[[socket.socket], int], tty: bool, is_exec: bool) -> None:
        self.sock, self._peer = socket.socketpair()
        self.tty = tty
        self.resizes: list[tuple[int, int]] = []
        self.closed = False
        self._runtime = runtime
        self._is_exec = is_exec
        self._code: int | None = None
        self._thread = threading.Thread(target=self._run, args=(process,), name="fake-exec", daemon=True)
        self._thread.start()

    def _run(self, process: Callable[[socket.socket], int]) -> None:
        try:
            self._code = process(self._peer)
        except OSError:  # the stream was closed under the process: killed
            self._code = 137
        finally:
            with contextlib.suppress(OSError):
                self._peer.shutdown(socket.SHUT_WR)

    def resize(self, width: int, height: int) -> None:
        if self.tty:
            self.resizes.append((width, height))

    def exit_code(self, wait_s: float) -> int | None:
        self._thread.join(wait_s)
        return None if self._thread.is_alive() or not self._is_exec else self._code

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for end in (self.sock, self._peer):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self._thread.join(5)
        self._runtime.open_streams.discard(self)
