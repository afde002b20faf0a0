"""The agent's own runtime types: what crosses the runtime boundary (never Docker SDK objects)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

ANY_IP = "0.0.0.0"  # kube's DefaultBindAllHostIP: a hostPort without hostIP is held on every address


@dataclass(frozen=True)
class ContainerID:
    """A container id as kubelet writes it: ``docker://<id>``."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}://{self.id}"

    @classmethod
    def parse(cls, text: str) -> ContainerID:
        kind, sep, ident = text.partition("://")
        if not sep or not kind or not ident:
            raise ValueError(f"invalid container id {text!r}: want <type>://<id>")
        return cls(kind, ident)


class ContainerState(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PodRef:
    """Identifies the pod a container belongs to; every container carries it as labels."""

    uid: str
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PortMapping:
    """A pod's ``hostPort``: ``host_ip:host_port`` on the node forwarded to ``container_port`` in the pod."""

    container_port: int
    host_port: int
    protocol: str = "TCP"  # TCP, UDP or SCTP
    host_ip: str = ""  # "" (or 0.0.0.0): every address of the node

    def overlaps(self, other: PortMapping) -> bool:
        """Whether the two cannot both be held on one node (kube's HostPortInfo.CheckConflict): the same protocol
        and port, on the same address or with either on every address."""
        if (self.protocol.upper(), self.host_port) != (other.protocol.upper(), other.host_port):
            return False
        ips = {self.host_ip or ANY_IP, other.host_ip or ANY_IP}
        return len(ips) == 1 or ANY_IP in ips


@dataclass(frozen=True)
class Container:
    """One container as the runtime sees it (sandbox containers have ``is_sandbox``)."""

    id: ContainerID
    pod: PodRef
    name: str  # the pod spec's container name; "POD" for the sandbox
    image: str
    image_id: str
    state: ContainerState
    restart_count: int = 0
    spec_hash: str = ""
    is_sandbox: bool = False
    is_init: bool = False
    is_ephemeral: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""  # e.g. "Completed", "Error", "OOMKilled"
    labels: dict[str, str] = field(default_factory=dict)
    port_mappings: tuple[PortMapping, ...] = ()  # a sandbox's: the host ports its pod holds (published or not)

    def instance_order(self) -> tuple[int, float]:
        """Sort key of a container's instances: the latest has the highest restart count (then creation time)."""
        return self.restart_count, self.created_at.timestamp() if self.created_at else 0.0


@dataclass(frozen=True)
class ContainerSecurity:
    """How a container is confined beyond its user (``pods.securitycontext`` makes it from the pod's spec)."""

    groups: tuple[int, ...] = ()  # supplementary groups: fsGroup and supplementalGroups
    read_only_root: bool = False  # readOnlyRootFilesystem
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    seccomp: str | None = None  # None: the engine's default profile; "unconfined"; else a profile's JSON text
    apparmor: str | None = None  # None: the engine's default; "unconfined"; else a loaded profile's name
    share_pid: bool = False  # shareProcessNamespace: join the sandbox's PID namespace


@dataclass(frozen=True)
class ContainerConfig:
    """What the runtime needs to create one app or init container of a pod."""

    name: str
    image: str
    command: list[str] = field(default_factory=list)  # entrypoint override (Kubernetes `command`)
    args: list[str] = field(default_factory=list)  # Kubernetes `args`
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    cpu_limit_nano: int | None = None  # Docker NanoCpus
    cpu_shares: int | None = None  # from requests.cpu, as kubelet does
    memory_limit_bytes: int | None = None
    memory_request_bytes: int | None = None
    user: str | None = None  # runAsUser
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)  # securityContext.capabilities (node admission allowed them)
    cap_drop: list[str] = field(default_factory=list)
    host_pid: bool = False  # the pod's hostPID / hostIPC (node admission allowed them)
    host_ipc: bool = False
    oom_score_adj: int | None = None  # as kubelet's QoS policy sets it; None: the engine's default
    pids_limit: int | None = None  # processes (and threads) the container may hold at once; None: no limit
    mounts: list[Mount] = field(default_factory=list)
    security: ContainerSecurity = ContainerSecurity()
    tty: bool = False
    stdin: bool = False
    restart_count: int = 0
    spec_hash: str = ""
    is_init: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # more labels (``runtime.labels``: the preStop hook ...)
    is_ephemeral: bool = False
    pid_target: ContainerID | None = None  # an ephemeral container's targetContainerName: its PID namespace is joined


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class SandboxConfig:
    """The pod's sandbox: one container holding the pod's network and IPC namespaces."""

    pod: PodRef
    host_network: bool = False
    host_ipc: bool = False
    hostname: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # the pod's own labels, kept for reference
    spec_hash: str = ""
    # The pod's hostPorts: published on the node unless ``host_network`` (then only recorded, for the node's checks).
    port_mappings: tuple[PortMapping, ...] = ()
    oom_score_adj: int | None = None
    sysctls: dict[str, str] = field(default_factory=dict)  # the pod's sysctls (node admission allowed them)


@dataclass(frozen=True)
class Image:
    id: str
    tags: list[str]
    size_bytes: int
    created_at: datetime | None = None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


@dataclass(frozen=True)
class ContainerUsage:
    """A container's resource usage at one instant, as cAdvisor reports it to kubelet's summary API."""

    cpu_usage_ns: int  # cumulative CPU time since the container started: a rate needs two samples
    memory_working_set_bytes: int  # memory usage less inactive file pages, what the OOM killer weighs
