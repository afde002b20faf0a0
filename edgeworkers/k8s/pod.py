"""core/v1 Pod: spec, containers, probes, volumes and status, with the API server's defaults.

Typed fields are the ones the agent acts on; the rest of the core/v1 schema is declared as ``Any``
so strict field validation accepts every legitimate manifest and the values are kept verbatim.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from edgeworkers.k8s.meta import K8sModel, K8sObject
from edgeworkers.k8s.quantity import canonical_quantity


def _quantity_string(value: Any) -> Any:
    """YAML may give ``cpu: 1``; Kubernetes stores every quantity as a string."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


QuantityStr = Annotated[str, BeforeValidator(_quantity_string)]
IntOrString = int | str


# --- environment -------------------------------------------------------------------------------------


class KeySelector(K8sModel):
    """``configMapKeyRef`` / ``secretKeyRef``."""

    name: str | None = None
    key: str = ""
    optional: bool | None = None


class ObjectFieldSelector(K8sModel):
    api_version: str | None = None
    field_path: str = ""


class ResourceFieldSelector(K8sModel):
    container_name: str | None = None
    resource: str = ""
    divisor: QuantityStr | None = None


class EnvVarSource(K8sModel):
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None
    file_key_ref: Any = None
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None


class EnvVar(K8sModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class SourceRef(K8sModel):
    """``configMapRef`` / ``secretRef`` of ``envFrom``."""

    name: str | None = None
    optional: bool | None = None


class EnvFromSource(K8sModel):
    prefix: str | None = None
    config_map_ref: SourceRef | None = None
    secret_ref: SourceRef | None = None


# --- ports, resources, mounts ------------------------------------------------------------------------


class ContainerPort(K8sModel):
    container_port: int
    name: str | None = None
    protocol: str = "TCP"
    host_port: int | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")


class ResourceRequirements(K8sModel):
    requests: dict[str, QuantityStr] | None = None
    limits: dict[str, QuantityStr] | None = None
    claims: list[Any] | None = None


class VolumeMount(K8sModel):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: str | None = None
    recursive_read_only: str | None = None
    bind_mount_options: list[str] | None = None


# --- probes and lifecycle ----------------------------------------------------------------------------


class ExecAction(K8sModel):
    command: list[str] | None = None


class HTTPHeader(K8sModel):
    name: str
    value: str


class HTTPGetAction(K8sModel):
    path: str = "/"
    port: IntOrString
    host: str | None = None
    scheme: str = "HTTP"
    http_headers: list[HTTPHeader] | None = None
    protocol: str | None = None


class TCPSocketAction(K8sModel):
    port: IntOrString
    host: str | None = None


class GRPCAction(K8sModel):
    port: int
    service: str | None = None
    mode: str | None = None


class SleepAction(K8sModel):
    seconds: int


class Probe(K8sModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: int | None = None
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None


class LifecycleHandler(K8sModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    sleep: SleepAction | None = None


class Lifecycle(K8sModel):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None
    stop_signal: str | None = None


class Capabilities(K8sModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class SecurityContext(K8sModel):
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    privileged: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    capabilities: Capabilities | None = None
    proc_mount: str | None = None
    se_linux_options: Any = None
    seccomp_profile: Any = None
    app_armor_profile: Any = None
    windows_options: Any = None


class PodSecurityContext(K8sModel):
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    fs_group: int | None = None
    fs_group_change_policy: str | None = None
    supplemental_groups: list[int] | None = None
    supplemental_groups_policy: str | None = None
    sysctls: list[Any] | None = None
    se_linux_options: Any = None
    se_linux_change_policy: str | None = None
    seccomp_profile: Any = None
    app_armor_profile: Any = None
    windows_options: Any = None


# --- containers --------------------------------------------------------------------------------------


# Restart policies.
ALWAYS, ON_FAILURE, NEVER = "Always", "OnFailure", "Never"


def default_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged image, else ``IfNotPresent`` (digests count as tags)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


class Container(K8sModel):
    name: str
    image: str | None = None
    image_pull_policy: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[EnvFromSource] | None = None
    ports: list[ContainerPort] | None = None
    resources: ResourceRequirements | None = None
    resize_policy: list[Any] | None = None
    restart_policy: str | None = None
    restart_policy_rules: list[Any] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    volume_mounts: list[VolumeMount] | None = None
    volume_devices: list[Any] | None = None
    security_context: SecurityContext | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None

    @property
    def pull_policy(self) -> str:
        """The effective image pull policy (the declared one, else the API server's default)."""
        return self.image_pull_policy or default_pull_policy(self.image or "")


class EphemeralContainer(Container):
    """A container added to a running pod (``kubectl debug``), in the PID namespace of ``targetContainerName``."""

    target_container_name: str | None = None


# --- volumes -----------------------------------------------------------------------------------------


class KeyToPath(K8sModel):
    key: str
    path: str
    mode: int | None = None
    user: int | None = None


class EmptyDirVolumeSource(K8sModel):
    medium: str | None = None
    size_limit: QuantityStr | None = None
    mode: int | None = None


class HostPathVolumeSource(K8sModel):
    path: str
    type: str | None = None


class ConfigMapVolumeSource(K8sModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    default_user: int | None = None
    optional: bool | None = None


class SecretVolumeSource(K8sModel):
    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    default_user: int | None = None
    optional: bool | None = None


class DownwardAPIVolumeFile(K8sModel):
    path: str
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: int | None = None
    user: int | None = None


class DownwardAPIVolumeSource(K8sModel):
    items: list[DownwardAPIVolumeFile] | None = None
    default_mode: int | None = None
    default_user: int | None = None


class ConfigMapProjection(K8sModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class SecretProjection(K8sModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class DownwardAPIProjection(K8sModel):
    items: list[DownwardAPIVolumeFile] | None = None


class VolumeProjection(K8sModel):
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardAPIProjection | None = Field(default=None, alias="downwardAPI")
    service_account_token: Any = None
    cluster_trust_bundle: Any = None
    pod_certificate: Any = None


class ProjectedVolumeSource(K8sModel):
    sources: list[VolumeProjection] | None = None
    default_mode: int | None = None
    default_user: int | None = None


# Volume sources the agent does not implement; declared so manifests using them still decode.
OTHER_VOLUME_SOURCES = (
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "ephemeral", "fc",
    "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "image", "iscsi", "nfs",
    "persistentVolumeClaim", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO",
    "storageos", "vsphereVolume",
)  # fmt: skip
VOLUME_SOURCES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected", *OTHER_VOLUME_SOURCES)


class Volume(K8sModel):
    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(default=None, alias="downwardAPI")
    projected: ProjectedVolumeSource | None = None
    aws_elastic_block_store: Any = None
    azure_disk: Any = None
    azure_file: Any = None
    cephfs: Any = None
    cinder: Any = None
    csi: Any = None
    ephemeral: Any = None
    fc: Any = None
    flex_volume: Any = None
    flocker: Any = None
    gce_persistent_disk: Any = None
    git_repo: Any = None
    glusterfs: Any = None
    image: Any = None
    iscsi: Any = None
    nfs: Any = None
    persistent_volume_claim: Any = None
    photon_persistent_disk: Any = None
    portworx_volume: Any = None
    quobyte: Any = None
    rbd: Any = None
    scale_io: Any = Field(default=None, alias="scaleIO")
    storageos: Any = None
    vsphere_volume: Any = None

    @property
    def sources(self) -> list[str]:
        """The camelCase names of the sources set on this volume (valid volumes have exactly one)."""
        dumped = self.model_dump(by_alias=True, exclude_none=True)
        return [s for s in VOLUME_SOURCES if s in dumped]


# --- spec --------------------------------------------------------------------------------------------


class Toleration(K8sModel):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class PodSpec(K8sModel):
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] | None = None
    eviction_responders: list[Any] | None = None
    hostname_override: str | None = None
    scheduling_group: Any = None
    ephemeral_containers: list[EphemeralContainer] | None = None
    restart_policy: str = "Always"
    termination_grace_period_seconds: int = 30
    active_deadline_seconds: int | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    host_users: bool | None = None
    share_process_namespace: bool | None = None
    hostname: str | None = None
    subdomain: str | None = None
    set_hostname_as_fqdn: bool | None = Field(default=None, alias="setHostnameAsFQDN")
    host_aliases: list[Any] | None = None
    node_name: str | None = None
    node_selector: dict[str, str] | None = None
    volumes: list[Volume] | None = None
    security_context: PodSecurityContext | None = None
    dns_policy: str | None = None
    dns_config: Any = None
    service_account_name: str | None = None
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    image_pull_secrets: list[Any] | None = None
    enable_service_links: bool | None = None
    affinity: Any = None
    tolerations: list[Toleration] | None = None
    topology_spread_constraints: list[Any] | None = None
    scheduler_name: str | None = None
    scheduling_gates: list[Any] | None = None
    priority: int | None = None
    priority_class_name: str | None = None
    preemption_policy: str | None = None
    runtime_class_name: str | None = None
    readiness_gates: list[Any] | None = None
    overhead: dict[str, QuantityStr] | None = None
    os: Any = None
    resource_claims: list[Any] | None = None
    resources: ResourceRequirements | None = None

    @property
    def all_containers(self) -> list[Container]:
        return [*(self.init_containers or []), *self.containers]


# --- status ------------------------------------------------------------------------------------------


class ContainerStateWaiting(K8sModel):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(K8sModel):
    started_at: str | None = None


class ContainerStateTerminated(K8sModel):
    exit_code: int
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = Field(default=None, alias="containerID")


class ContainerState(K8sModel):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(K8sModel):
    name: str
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool = False
    started: bool | None = None
    restart_count: int = 0
    image: str = ""
    image_id: str = Field(default="", alias="imageID")
    container_id: str | None = Field(default=None, alias="containerID")
    allocated_resources: dict[str, QuantityStr] | None = None
    allocated_resources_status: list[Any] | None = None
    resources: ResourceRequirements | None = None
    user: Any = None
    volume_mounts: list[Any] | None = None
    stop_signal: str | None = None


class PodCondition(K8sModel):
    type: str
    status: str
    observed_generation: int | None = None
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class PodIP(K8sModel):
    ip: str


class PodStatus(K8sModel):
    phase: str | None = None
    conditions: list[PodCondition] | None = None
    message: str | None = None
    reason: str | None = None
    nominated_node_name: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    host_ips: list[PodIP] | None = Field(default=None, alias="hostIPs")
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")
    start_time: str | None = None
    qos_class: str | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    container_statuses: list[ContainerStatus] | None = None
    ephemeral_container_statuses: list[ContainerStatus] | None = None
    resize: str | None = None
    resource_claim_statuses: list[Any] | None = None
    observed_generation: int | None = None
    allocated_resources: dict[str, QuantityStr] | None = None
    resources: ResourceRequirements | None = None
    extended_resource_claim_status: Any = None
    node_allocatable_resource_claim_statuses: list[Any] | None = None
    volume_health: list[Any] | None = None


class Pod(K8sObject):
    api_version: str | None = "v1"
    kind: str | None = "Pod"
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus | None = None


# --- defaulting --------------------------------------------------------------------------------------

_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
_DEFAULT_MODE = 0o644


def _default_handler(handler: dict[str, Any]) -> None:
    http_get = handler.get("httpGet")
    if isinstance(http_get, dict):
        http_get.setdefault("path", "/")
        http_get.setdefault("scheme", "HTTP")


def _child(obj: Any, key: str) -> dict[str, Any]:
    """``obj[key]`` when both are dicts, else an empty dict (defaulting must not trip over invalid input)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _stored_quantity(value: Any) -> Any:
    """A quantity as the API server stores it (``0.5`` -> ``500m``); a malformed one is left for validation."""
    try:
        return canonical_quantity(value)
    except (ValueError, TypeError):
        return value


def _default_container(container: dict[str, Any], host_network: bool) -> None:
    if isinstance(container.get("image"), str) and not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = default_pull_policy(container["image"])
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = container.setdefault("resources", {})
    if isinstance(resources, dict):
        for kind in ("limits", "requests"):
            if isinstance(resources.get(kind), dict):
                resources[kind] = {name: _stored_quantity(q) for name, q in resources[kind].items()}
        requests = resources.setdefault("requests", {}) if resources.get("limits") else None
        if isinstance(requests, dict) and isinstance(resources["limits"], dict):
            # The API server copies limits into missing requests.
            for name, limit in resources["limits"].items():
                requests.setdefault(name, limit)
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if host_network and not port.get("hostPort"):
                port["hostPort"] = port.get("containerPort")
    for env in container.get("env") or []:
        field_ref = _child(_child(env, "valueFrom"), "fieldRef")
        if field_ref:
            field_ref.setdefault("apiVersion", "v1")
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(kind)
        if isinstance(probe, dict):
            for name, value in _PROBE_DEFAULTS.items():
                if not probe.get(name):  # Kubernetes treats 0 as unset here
                    probe[name] = value
            _default_handler(probe)
    for hook in _child(container, "lifecycle").values():
        if isinstance(hook, dict):
            _default_handler(hook)


def _default_volume(volume: dict[str, Any]) -> None:
    if not any(source in volume for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("configMap", "secret", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", _DEFAULT_MODE)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    downward = [_child(volume, "downwardAPI")]
    for projection in _child(volume, "projected").get("sources") or []:
        downward.append(_child(projection, "downwardAPI"))
        token = _child(projection, "serviceAccountToken")
        if token and not token.get("expirationSeconds"):
            token["expirationSeconds"] = 3600
    for source in downward:
        for item in source.get("items") or []:
            field_ref = _child(item, "fieldRef")
            if field_ref:
                field_ref.setdefault("apiVersion", "v1")


def default_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with the defaults the API server applies on create (SetDefaults_Pod and friends)."""
    pod = copy.deepcopy(obj)
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        return pod
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container, host_network=spec.get("hostNetwork") is True)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)
    return pod
