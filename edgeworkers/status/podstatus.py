"""A pod's core/v1 PodStatus from its containers as the runtime sees them (kubelet's generateAPIPodStatus).

Pure: the sync passes the containers, the waiting reasons it met (image pulls, back-off, config errors),
the time, the IPs, the termination messages of exited containers (``pods.termination``) and the probe results
(``edgeworkers.prober``): a container with a startup probe is started once
it succeeded, one with a readiness probe ready once that succeeded (and it is started); without probes, running is
both. A container of which the runtime has no instance left takes what the pod's last status shows of it
(``last_termination``), as kubelet's does from its status manager.
"""

from __future__ import annotations

from typing import Any

from edgeworkers.k8s.pod import ALWAYS, NEVER, Pod
from edgeworkers.k8s.pod import Container as SpecContainer
from edgeworkers.k8s.qos import qos_class
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.runtime.types import Container, ContainerState
from edgeworkers.status.proberesults import ProbeResults

Waiting = dict[str, tuple[str, str]]
# kubelet's words for a container that was running and that the runtime no longer knows.
STATUS_UNKNOWN = "ContainerStatusUnknown"
STATUS_UNKNOWN_EXIT_CODE = 137
STATUS_UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"
Messages = dict[str, str]  # container id -> its termination message (``pods.termination``)


def _terminated(container: Container, messages: Messages | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": container.exit_code if container.exit_code is not None else 0}
    if container.reason:
        state["reason"] = container.reason
    message = (messages or {}).get(container.id.id)
    if message:
        state["message"] = message
    if container.started_at:
        state["startedAt"] = format_time(container.started_at)
    if container.finished_at:
        state["finishedAt"] = format_time(container.finished_at)
    state["containerID"] = str(container.id)
    return {"terminated": state}


def _waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def _instances(containers: list[Container], name: str, is_init: bool) -> list[Container]:
    """One spec container's instances, newest first."""
    mine = [c for c in containers if not c.is_sandbox and c.name == name and c.is_init == is_init]
    return sorted(mine, key=Container.instance_order, reverse=True)


def last_termination(status: dict[str, Any]) -> dict[str, Any] | None:
    """How a container's last instance ended, as its ContainerStatus tells: its state (terminated), its last state
    while it waits to restart, or kubelet's unknown end of one last seen running; None if it never ran."""
    state = status.get("state") or {}
    if "terminated" in state:
        return state["terminated"]
    if "waiting" in state:
        return (status.get("lastState") or {}).get("terminated")
    if "running" in state:
        return {"exitCode": STATUS_UNKNOWN_EXIT_CODE, "reason": STATUS_UNKNOWN, "message": STATUS_UNKNOWN_MESSAGE,
                "startedAt": state["running"].get("startedAt"), "containerID": status.get("containerID")}  # fmt: skip
    return None


def _remembered(
    spec: SpecContainer, old: dict[str, Any], ended: dict[str, Any], waiting: tuple[str, str] | None, is_init: bool
) -> dict[str, Any]:
    """The ContainerStatus of a container that ran (``old``, its last status) and of which the runtime has no
    instance left (pruned, collected): kubelet's convertToAPIContainerStatuses keeps an ended one as it was, shows one
    last seen running as ended unknown, and one waiting to restart with its last termination."""
    state = old.get("state") or {}
    if waiting is not None:
        now, last = _waiting(*waiting), {"terminated": ended}
    elif "terminated" in state or "running" in state:
        now, last = {"terminated": ended}, old.get("lastState") or {}
    else:  # it waited to restart and will not
        now, last = {"terminated": ended}, {}
    status: dict[str, Any] = {
        "name": spec.name,
        "state": now,
        "lastState": last,
        "ready": is_init and "terminated" in now and ended.get("exitCode") == 0,
        "restartCount": old.get("restartCount") or 0,
        "image": spec.image or "",
        "imageID": old.get("imageID") or "",
        "started": False,
    }
    if old.get("containerID"):
        status["containerID"] = old["containerID"]
    return status


def container_status(
    spec: SpecContainer,
    containers: list[Container],
    waiting: Waiting,
    is_init: bool,
    initializing: bool,
    probes: ProbeResults | None = None,
    old: dict[str, Any] | None = None,
    messages: Messages | None = None,
) -> dict[str, Any]:
    """The ContainerStatus of ``spec``; ``initializing``: the pod's init containers have not all succeeded; ``old``:
    its ContainerStatus in the pod's last status, for a container the runtime no longer has."""
    latest, *older = _instances(containers, spec.name, is_init) or [None]
    ended = last_termination(old) if latest is None and old is not None else None
    if ended is not None:
        return _remembered(spec, old, ended, waiting.get(spec.name), is_init)
    previous = next((c for c in older if c is not None and c.state == ContainerState.EXITED), None)
    exited = latest is not None and latest.state == ContainerState.EXITED
    last = previous
    if spec.name in waiting:
        state = _waiting(*waiting[spec.name])
        last = latest if exited else previous
    elif latest is None:
        state = _waiting("PodInitializing" if initializing or is_init else "ContainerCreating")
    elif latest.state == ContainerState.RUNNING:
        state = {"running": {"startedAt": format_time(latest.started_at or latest.created_at or 0)}}
    elif exited:
        state = _terminated(latest, messages)
    elif latest.state == ContainerState.CREATED:
        state = _waiting("ContainerCreating")
    else:
        state = _waiting("ContainerStatusUnknown", "The container's state could not be read from the runtime")
    last_state = _terminated(last, messages) if last is not None else {}
    running = "running" in state
    succeeded = "terminated" in state and state["terminated"]["exitCode"] == 0
    results = (probes or {}).get(latest.id.id, {}) if latest is not None else {}
    started = running and (is_init or spec.startup_probe is None or results.get("startup", False))
    ready = started and (is_init or spec.readiness_probe is None or results.get("readiness", False))
    status: dict[str, Any] = {
        "name": spec.name,
        "state": state,
        "lastState": last_state,
        "ready": succeeded if is_init else ready,
        "restartCount": latest.restart_count if latest else 0,
        "image": spec.image or "",
        "imageID": f"docker://{latest.image_id}" if latest and latest.image_id else "",
        "started": started,
    }
    if latest is not None:
        status["containerID"] = str(latest.id)
    return status


def ephemeral_status(spec: SpecContainer, containers: list[Container], waiting: Waiting) -> dict[str, Any]:
    """An ephemeral container's status: as another container's, but never ready, and without ``started`` (kubelet's
    prober sets both only for regular and init containers)."""
    status = container_status(spec, containers, waiting, False, False)
    status.pop("started")
    return {**status, "ready": False}


def pod_phase(restart_policy: str, init_statuses: list[dict[str, Any]], statuses: list[dict[str, Any]]) -> str:
    """kubelet's getPhase over the container statuses."""
    pending_init = failed_init = 0
    for status in init_statuses:
        terminated = status["state"].get("terminated") or (
            status["lastState"].get("terminated") if "waiting" in status["state"] else None
        )
        if terminated is None:
            pending_init += 1
        elif terminated["exitCode"] != 0:
            failed_init += 1
    if failed_init and restart_policy == NEVER:
        return "Failed"
    running = waiting = stopped = succeeded = unknown = 0
    for status in statuses:
        state = status["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif status["lastState"].get("terminated"):
            stopped += 1
        elif state["waiting"]["reason"] == "ContainerStatusUnknown":
            unknown += 1
        else:
            waiting += 1
    if pending_init or failed_init or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if stopped and not running and not unknown:
        if restart_policy == ALWAYS:
            return "Running"  # restarting
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart_policy == NEVER else "Running"
    return "Pending"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        condition["reason"] = reason
    if not ok and message:
        condition["message"] = message
    return condition


def _stamp_transitions(conditions: list[dict[str, Any]], previous: list[dict[str, Any]], now: str) -> None:
    """Keep a condition's lastTransitionTime while its status is unchanged."""
    before = {c.get("type"): c for c in previous}
    for condition in conditions:
        old = before.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"] and old.get("lastTransitionTime")
        condition["lastTransitionTime"] = old["lastTransitionTime"] if same else now


def compute_pod_status(
    pod: Pod,
    containers: list[Container],
    waiting: Waiting,
    now: float,
    pod_ip: str | None,
    host_ip: str | None,
    previous: dict[str, Any] | None = None,
    probes: ProbeResults | None = None,
    messages: Messages | None = None,
) -> dict[str, Any]:
    """The pod's core/v1 PodStatus. ``containers``: the runtime's containers of this pod (this uid);
    ``waiting``: container name -> (reason, message) met by the sync; ``previous``: the last status, whose
    transition times and startTime are kept."""
    previous = previous or {}
    restart_policy = pod.spec.restart_policy or ALWAYS
    old_inits = {s.get("name"): s for s in previous.get("initContainerStatuses") or []}
    old_apps = {s.get("name"): s for s in previous.get("containerStatuses") or []}
    inits = [container_status(c, containers, waiting, True, True, old=old_inits.get(c.name),
                              messages=messages)
             for c in pod.spec.init_containers or []]  # fmt: skip
    incomplete = [s["name"] for s in inits if not s["ready"]]
    apps = [container_status(c, containers, waiting, False, bool(incomplete), probes, old_apps.get(c.name),
                              messages)
            for c in pod.spec.containers]  # fmt: skip
    unready = [s["name"] for s in apps if not s["ready"]]
    phase = pod_phase(restart_policy, inits, apps)
    not_ready = "PodCompleted" if phase == "Succeeded" else "ContainersNotReady"
    unready_message = f"containers with unready status: [{' '.join(unready)}]"
    sandbox_up = any(c.is_sandbox and c.state == ContainerState.RUNNING for c in containers)
    conditions = [
        _condition("PodReadyToStartContainers", sandbox_up),
        _condition("Initialized", not incomplete, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(incomplete)}]"),
        _condition("Ready", not unready, not_ready, unready_message),
        _condition("ContainersReady", not unready, not_ready, unready_message),
        _condition("PodScheduled", True),
    ]  # fmt: skip
    stamp = format_time(now)
    _stamp_transitions(conditions, previous.get("conditions") or [], stamp)
    sandboxes = sorted(c.created_at for c in containers if c.is_sandbox and c.created_at)
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}] if host_ip else None,
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}] if pod_ip else None,
        "startTime": previous.get("startTime") or (format_time(sandboxes[0]) if sandboxes else stamp),
        "initContainerStatuses": inits or None,
        "containerStatuses": apps,
        "ephemeralContainerStatuses": [ephemeral_status(c, containers, waiting)
                                       for c in pod.spec.ephemeral_containers or []] or None,
        "qosClass": qos_class(pod),
    }
    return {key: value for key, value in status.items() if value is not None}
