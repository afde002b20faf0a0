"""Server-side printing: `meta.k8s.io/v1` Tables as `kubectl get` asks for them.

Columns and cells follow kubernetes `pkg/printers/internalversion/printers.go` (printPod, printNode, ...)
with `Wide: true`, as the API server does: kubectl hides `priority: 1` columns unless `-o wide`.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_NONE = "<none>"
_UNKNOWN = "<unknown>"
_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"
_NODE_UNREACHABLE_REASON = "NodeLost"
_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically."
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is represented in RFC3339 form and is in UTC."
)


def _col(name: str, description: str, priority: int = 0, fmt: str = "") -> dict:
    """A column definition of a string (``_int_col``: of an integer)."""
    return {"name": name, "type": "string", "format": fmt, "description": description, "priority": priority}


def _int_col(name: str, description: str) -> dict:
    return {**_col(name, description), "type": "integer"}


_NAME = _col("Name", _NAME_DOC, fmt="name")
_AGE = _col("Age", _AGE_DOC)


def _template_columns(selector: str) -> list[dict]:
    """The wide columns of a kind with a pod template: its containers, their images, the selector (``selector``: its
    description)."""
    return [_col("Containers", "Names of each container in the template.", priority=1),
            _col("Images", "Images referenced by each container in the template.", priority=1),
            _col("Selector", selector, priority=1)]


def _replicas_columns(desired: str, current: str, ready: str, selector: str) -> list[dict]:
    """A ReplicaSet's or ReplicationController's columns, with the descriptions of its own fields."""
    return [_NAME, _int_col("Desired", desired), _int_col("Current", current), _int_col("Ready", ready), _AGE,
            *_template_columns(selector)]


COLUMNS: dict[str, list[dict]] = {
    "pods": [
        _NAME,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                         "container in this pod has restarted."),
        _AGE,
        _col("IP", "podIP address allocated to the pod.", priority=1),
        _col("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
        _col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node.",
             priority=1),
        _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", priority=1),
    ],
    "nodes": [
        _NAME,
        _col("Status", "The status of the node"),
        _col("Roles", "The roles of the node"),
        _AGE,
        _col("Version", "Kubelet Version reported by the node."),
        _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
        _col("External-IP", "List of addresses reachable to the node.", priority=1),
        _col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
             priority=1),
        _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
        _col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.",
             priority=1),
    ],
    "deployments": [
        _NAME,
        _col("Ready", "Number of the pod with ready state"),
        _int_col("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired "
                               "template spec."),
        _int_col("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this "
                              "deployment."),
        _AGE,
        *_template_columns("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be "
                           "the ones affected by this deployment."),
    ],
    "replicasets": _replicas_columns(
        "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and "
        "unspecified. Defaults to 1.", "Replicas is the most recently observed number of non-terminating pods.",
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
        "Selector is a label query over pods that should match the replica count."),
    "replicationcontrollers": _replicas_columns(
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and "
        "unspecified. Defaults to 1.", "Replicas is the most recently observed number of replicas.",
        "The number of ready replicas for this replication controller.",
        "Selector is a label query over pods that should match the Replicas count."),
    "configmaps": [_NAME, _col("Data", "Data contains the configuration data."), _AGE],
    "secrets": [
        _NAME,
        _col("Type", "The type of the secret"),
        _col("Data", "Data contains the secret data."),
        _AGE,
    ],
    "namespaces": [_NAME, _col("Status", "The status of the namespace"), _AGE],
    "events": [
        _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
        _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        _col("Reason", "This should be a short, machine understandable string that gives the reason for the "
                       "transition into the object's current status."),
        _col("Object", "The object that this event is about."),
        _col("Subobject", "If the reference is to an object part, a JSONPath expression for the part.", priority=1),
        _col("Source", "The component reporting this event.", priority=1),
        _col("Message", "A human-readable description of the status of this operation."),
        _col("First Seen", "The time at which the event was first recorded.", priority=1),
        _col("Count", "The number of times this event has occurred.", priority=1),
        _col("Name", _NAME_DOC, priority=1, fmt="name"),
    ],
    "leases": [_NAME, _col("Holder", "HolderIdentity contains the identity of the holder of a current lease."), _AGE],
    "daemonsets": [
        _NAME,
        _int_col("Desired", "The total number of nodes that should be running the daemon pod (including nodes "
                            "correctly running the daemon pod)."),
        _int_col("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run "
                            "the daemon pod."),
        _int_col("Ready", "numberReady is the number of nodes that should be running the daemon pod and have one "
                          "or more of the daemon pod running with a Ready Condition."),
        _int_col("Up-to-date", "The total number of nodes that are running updated daemon pod"),
        _int_col("Available", "The number of nodes that should be running the daemon pod and have one or more of "
                              "the daemon pod running and available (ready for at least spec.minReadySeconds)"),
        _col("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
        _AGE,
        *_template_columns("A selector to restrict the list of returned objects by their labels."),
    ],
    "controllerrevisions": [
        _NAME,
        _col("Controller", "Controller of the object"),
        _int_col("Revision", "Revision indicates the revision of the state represented by Data."),
        _AGE,
    ],
    "serviceaccounts": [
        _NAME,
        _int_col("Secrets", "Secrets is the list of secrets allowed to be used by pods running using this "
                            "ServiceAccount."),
        _AGE,
    ],
    "jobs": [
        _NAME,
        _col("Status", "Status of the job."),
        _col("Completions", "The completion status of the job."),
        _col("Duration", "Time required to complete the job."),
        _AGE,
        *_template_columns("Selector of the job."),
    ],
    "services": [
        _NAME,
        _col("Type", "type determines how the Service is exposed. Defaults to ClusterIP."),
        _col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
        _col("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
                            "traffic for this service."),
        _col("Port(s)", "The list of ports that are exposed by this service."),
        _AGE,
        _col("Selector", "Route service traffic to pods with label keys and values matching this selector.",
             priority=1),
    ],
    "endpoints": [
        _NAME,
        _col("Endpoints", "The set of all endpoints is the union of all subsets."),
        _AGE,
    ],
    "endpointslices": [
        _NAME,
        _col("AddressType", "addressType specifies the type of address carried by this EndpointSlice."),
        _col("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice."),
        _col("Endpoints", "endpoints is a list of unique endpoints in this slice."),
        _AGE,
    ],
}


# --- time ---


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp (`2024-01-02T03:04:05Z`, with or without fractions) as an aware datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # a malformed timestamp prints as unknown rather than failing the whole list
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """apimachinery's `duration.HumanDuration`: `5s`, `3m20s`, `10m`, `5h3m`, `2d3h`, `400d`, `2y5d`."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: str | None, now: datetime) -> str:
    """`translateTimestampSince`: `<unknown>` for a missing timestamp."""
    then = parse_time(value)
    if then is None:
        return _UNKNOWN
    return human_duration((_aware(now) - then).total_seconds())


# --- pods ---


def _restartable_init(container: dict | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"


def _later(current: datetime | None, state: dict | None) -> datetime | None:
    finished = parse_time(((state or {}).get("terminated") or {}).get("finishedAt"))
    if finished is not None and (current is None or finished > current):
        return finished
    return current


def _condition_true(conditions: list[dict], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def pod_status_reason(pod: dict) -> str:
    """The STATUS column of `kubectl get pods`."""
    return _pod_summary(pod)[1]


def _pod_summary(pod: dict) -> tuple[str, str, int, datetime | None]:
    """(READY, STATUS, restarts, last restart time) exactly as printPod computes them."""
    spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, pod.get("metadata") or {}
    conditions = status.get("conditions") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(_restartable_init(c) for c in init_specs.values())
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = _later(last_restart, cs.get("lastState"))
        sidecar = _restartable_init(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, cs.get("lastState"))
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode') or 0}"
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, cs.get("lastState"))
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode') or 0}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == _NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return f"{ready}/{total}", reason, restarts, last_restart


def _pod_cells(pod: dict, now: datetime) -> list:
    spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, pod.get("metadata") or {}
    ready, reason, restarts, last_restart = _pod_summary(pod)
    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((_aware(now) - last_restart).total_seconds())} ago)"
    pod_ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    gates_cell = _NONE
    if gates:
        by_type = {}
        for c in status.get("conditions") or []:
            by_type.setdefault(c.get("type"), c)
        true = sum((by_type.get(g.get("conditionType")) or {}).get("status") == "True" for g in gates)
        gates_cell = f"{true}/{len(gates)}"
    return [
        meta.get("name", ""),
        ready,
        reason,
        restarts_cell,
        since(meta.get("creationTimestamp"), now),
        (pod_ips[0].get("ip") if pod_ips else "") or _NONE,
        spec.get("nodeName") or _NONE,
        status.get("nominatedNodeName") or _NONE,
        gates_cell,
    ]


def _pod_conditions(pod: dict) -> list[dict] | None:
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# --- other kinds ---


def node_status(node: dict) -> str:
    """The STATUS column of `kubectl get nodes`: Ready / NotReady / Unknown, plus `,SchedulingDisabled`."""
    conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    parts = []
    if "Ready" in conditions:
        parts.append("Ready" if conditions["Ready"].get("status") == "True" else "NotReady")
    else:
        parts.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(labels: dict) -> str:
    roles = set()
    for key, value in labels.items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX):]:
            roles.add(key[len(_ROLE_PREFIX):])
        elif key == _ROLE_LABEL and value:
            roles.add(value)
    return ",".join(sorted(roles)) or _NONE


def _node_address(node: dict, type_: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == type_:
            return address.get("address") or _NONE
    return _NONE


def _node_cells(node: dict, now: datetime) -> list:
    meta = node.get("metadata") or {}
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [
        meta.get("name", ""),
        node_status(node),
        node_roles(meta.get("labels") or {}),
        since(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or _UNKNOWN,
        info.get("kernelVersion") or _UNKNOWN,
        info.get("containerRuntimeVersion") or _UNKNOWN,
    ]


def _configmap_cells(cm: dict, now: datetime) -> list:
    meta = cm.get("metadata") or {}
    count = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [meta.get("name", ""), count, since(meta.get("creationTimestamp"), now)]


def _secret_cells(secret: dict, now: datetime) -> list:
    meta = secret.get("metadata") or {}
    return [meta.get("name", ""), secret.get("type", ""), len(secret.get("data") or {}),
            since(meta.get("creationTimestamp"), now)]


def _namespace_cells(ns: dict, now: datetime) -> list:
    meta = ns.get("metadata") or {}
    return [meta.get("name", ""), (ns.get("status") or {}).get("phase", ""), since(meta.get("creationTimestamp"), now)]


def _event_cells(event: dict, now: datetime) -> list:
    first = since(event.get("firstTimestamp"), now)
    if not event.get("firstTimestamp"):
        first = since(event.get("eventTime"), now)
    last = since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    involved = event.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        (event.get("message") or "").strip(),
        first,
        count,
        (event.get("metadata") or {}).get("name", ""),
    ]


def _lease_cells(lease: dict, now: datetime) -> list:
    meta = lease.get("metadata") or {}
    holder = (lease.get("spec") or {}).get("holderIdentity") or ""
    return [meta.get("name", ""), holder, since(meta.get("creationTimestamp"), now)]


def _serviceaccount_cells(account: dict, now: datetime) -> list:
    meta = account.get("metadata") or {}
    return [meta.get("name", ""), len(account.get("secrets") or []), since(meta.get("creationTimestamp"), now)]


def format_labels(labels: dict | None) -> str:
    """apimachinery's ``labels.FormatLabels``: ``k=v`` pairs sorted by key, or ``<none>``."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or _NONE


_OPERATORS = {"In": "in", "NotIn": "notin"}


def format_label_selector(selector: dict | None) -> str:
    """metav1's ``FormatLabelSelector``: the selector's requirements as a label query sorted by key, or ``<none>``."""
    selector = selector or {}
    terms = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator")
        if operator in _OPERATORS:
            terms.append((key, f"{key} {_OPERATORS[operator]} ({','.join(sorted(expression.get('values') or []))})"))
        else:
            terms.append((key, key if operator == "Exists" else f"!{key}"))
    return ",".join(term for _, term in sorted(terms, key=lambda t: t[0])) or _NONE


def _template_containers(template: dict) -> tuple[str, str]:
    """kube's ``layoutContainerCells``: the template's container names and images, comma-separated."""
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _daemonset_cells(ds: dict, now: datetime) -> list:
    meta, spec, status = ds.get("metadata") or {}, ds.get("spec") or {}, ds.get("status") or {}
    template = spec.get("template") or {}
    names, images = _template_containers(template)
    counts = [status.get(k) or 0 for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                          "updatedNumberScheduled", "numberAvailable")]
    return [meta.get("name", ""), *counts, format_labels((template.get("spec") or {}).get("nodeSelector")),
            since(meta.get("creationTimestamp"), now), names, images, format_label_selector(spec.get("selector"))]


def _controllerrevision_cells(revision: dict, now: datetime) -> list:
    meta = revision.get("metadata") or {}
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    controller = _NONE
    if owner:
        group = (owner.get("apiVersion") or "").rpartition("/")[0]
        controller = f"{owner.get('kind', '').lower()}{'.' + group if group else ''}/{owner.get('name', '')}"
    return [meta.get("name", ""), controller, revision.get("revision") or 0, since(meta.get("creationTimestamp"), now)]


def _deployment_cells(deployment: dict, now: datetime) -> list:
    meta, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    names, images = _template_containers(spec.get("template") or {})
    return [meta.get("name", ""), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
            since(meta.get("creationTimestamp"), now), names, images, format_label_selector(spec.get("selector"))]


def _job_status(job: dict) -> str:
    """printJob's STATUS: the first of these conditions the Job has, else Running."""
    conditions = (job.get("status") or {}).get("conditions") or []
    for type_ in ("Complete", "Failed"):
        if _condition_true(conditions, type_):
            return type_
    if job["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for type_ in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _condition_true(conditions, type_):
            return type_
    return "Running"


def _job_cells(job: dict, now: datetime) -> list:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded, completions, parallelism = status.get("succeeded", 0), spec.get("completions"), spec.get("parallelism")
    if completions is not None:
        done = f"{succeeded}/{completions}"
    elif parallelism is not None and parallelism > 1:
        done = f"{succeeded}/1 of {parallelism}"
    else:
        done = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = human_duration(((end or _aware(now)) - start).total_seconds()) if start else ""
    names, images = _template_containers(spec.get("template") or {})
    return [job["metadata"].get("name", ""), _job_status(job), done, duration,
            since(job["metadata"].get("creationTimestamp"), now), names, images,
            format_label_selector(spec.get("selector"))]
def _service_external_ip(svc: dict) -> str:
    """kube's ``getServiceExternalIP``."""
    spec = svc.get("spec") or {}
    kind, external = spec.get("type"), list(spec.get("externalIPs") or [])
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or _NONE
    if kind == "ExternalName":
        return spec.get("externalName") or ""
    if kind == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        found = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        return ",".join(found + external) or "<pending>"
    return _UNKNOWN


def _service_cells(svc: dict, now: datetime) -> list:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ports = []
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port')}{node_port}/{protocol}")
    return [meta.get("name", ""), spec.get("type", ""), spec.get("clusterIP") or _NONE, _service_external_ip(svc),
            ",".join(ports) or _NONE, since(meta.get("creationTimestamp"), now), format_labels(spec.get("selector"))]


def _more(entries: list[str], count: int, unset: str) -> str:
    """The first three entries, then `+ N more...`, as kube's endpoint printers list them."""
    shown = ",".join(entries[:3])
    return f"{shown} + {count - 3} more..." if count > 3 else shown or unset


def _endpoints_cells(obj: dict, now: datetime) -> list:
    """kube's ``formatEndpoints``: ready addresses only, `ip:port` per port."""
    meta, subsets = obj.get("metadata") or {}, obj.get("subsets") or []
    entries: list[str] = []
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:
            entries += addresses
        for port in ports:
            entries += [f"[{ip}]:{port.get('port')}" if ":" in ip else f"{ip}:{port.get('port')}" for ip in addresses]
    shown = _more(entries, len(entries), "") if subsets else _NONE
    return [meta.get("name", ""), shown, since(meta.get("creationTimestamp"), now)]


def _endpointslice_cells(obj: dict, now: datetime) -> list:
    meta = obj.get("metadata") or {}
    ports = [str(p["port"]) if p.get("port") is not None else p.get("name") or "*" for p in obj.get("ports") or []]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [meta.get("name", ""), obj.get("addressType", ""), _more(ports, len(ports), "<unset>"),
            _more(addresses, len(addresses), "<unset>"), since(meta.get("creationTimestamp"), now)]


def _replicas_cells(obj: dict, now: datetime, selector: str) -> list:
    """kube's ``printReplicaSet``/``printReplicationController``: desired, current and ready replicas."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    names, images = _template_containers(spec.get("template") or {})
    return [meta.get("name", ""), spec.get("replicas") or 0, status.get("replicas") or 0,
            status.get("readyReplicas") or 0, since(meta.get("creationTimestamp"), now), names, images, selector]


def _replicaset_cells(rs: dict, now: datetime) -> list:
    return _replicas_cells(rs, now, format_label_selector((rs.get("spec") or {}).get("selector")))


def _replicationcontroller_cells(rc: dict, now: datetime) -> list:
    return _replicas_cells(rc, now, format_labels((rc.get("spec") or {}).get("selector")))


_CELLS: dict[str, Callable[[dict, datetime], list]] = {
    "services": _service_cells,
    "endpoints": _endpoints_cells,
    "endpointslices": _endpointslice_cells,
    "pods": _pod_cells,
    "deployments": _deployment_cells,
    "replicasets": _replicaset_cells,
    "replicationcontrollers": _replicationcontroller_cells,
    "nodes": _node_cells,
    "configmaps": _configmap_cells,
    "secrets": _secret_cells,
    "namespaces": _namespace_cells,
    "events": _event_cells,
    "leases": _lease_cells,
    "serviceaccounts": _serviceaccount_cells,
    "daemonsets": _daemonset_cells,
    "controllerrevisions": _controllerrevision_cells,
    "jobs": _job_cells,
}


# kube-apiserver's DefaultTableConvertor, for a kind without printer columns of its own.
_DEFAULT_COLUMNS = [_NAME, _col("Created At", _AGE_DOC, fmt="date")]


def _default_cells(obj: dict, _now: datetime) -> list:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), meta.get("creationTimestamp") or ""]


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def partial_object_metadata(obj: dict) -> dict:
    """What a Table row's `object` holds by default (`includeObject=Metadata`)."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def to_table(resource: str, objs: list[dict], resource_version: str, now: datetime) -> dict:
    """A `meta.k8s.io/v1` Table of `objs` (all of one `resource`, e.g. "pods")."""
    cells = _CELLS.get(resource, _default_cells)
    rows = []
    for obj in objs:
        row: dict = {"cells": cells(obj, now), "object": partial_object_metadata(obj)}
        conditions = _pod_conditions(obj) if resource == "pods" else None
        if conditions:
            row["conditions"] = conditions
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": COLUMNS.get(resource, _DEFAULT_COLUMNS),
        "rows": rows,
    }
