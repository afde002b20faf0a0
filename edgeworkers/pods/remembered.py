"""What the node remembers of a pod that Docker no longer shows: its last status is the memory, as kubelet's status
manager is.

Docker is the truth of what runs, not of what ran: ``docker container prune``, the container GC (``MaxPerPodContainer``
0) or an engine that lost its state remove dead containers, and with them a finished pod's exit codes and a crashing
container's restart count. Read from the pod's last status (``status.manager``; the cloud's copy when the node has
none), they keep their meaning:

- ``is_terminal``: a pod that reached ``Succeeded`` or ``Failed`` never runs again (kubelet refuses a phase that leaves
  a terminal one), whatever Docker still shows of it.
- ``remembered_containers``: a stand-in for each container the status shows as having run and of which Docker has no
  instance left: exited, with the exit code, times and restart count the status shows (one last seen running: exit
  137, ``ContainerStatusUnknown``, as kubelet says; ``status.podstatus.last_termination``). The planner (``pods.policy``) applies the restart policy and back-off to
  it as to a dead container, so an ``Always`` pod keeps its restart count and its CrashLoopBackOff, and a container that
  ended under ``Never`` (or succeeded under ``OnFailure``) is not started again. A stand-in is never acted on: it is
  exited (nothing to stop) and the only instance of its container (nothing removes it).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.printers import parse_time
from edgeworkers.runtime.types import Container, ContainerID, ContainerState, PodRef
from edgeworkers.status.podstatus import last_termination

TERMINAL_PHASES = ("Succeeded", "Failed")
WHOLE_SECOND = timedelta(seconds=1) - timedelta(microseconds=1)


def is_terminal(status: dict[str, Any] | None) -> bool:
    return status is not None and status.get("phase") in TERMINAL_PHASES


def remembered_containers(pod: Pod, containers: list[Container], previous: dict[str, Any] | None) -> list[Container]:
    """Stand-ins for ``pod``'s containers that ``previous`` (its last status) shows as having run and that have no
    instance among ``containers`` (the runtime's containers of the pod's key)."""
    if not previous:
        return []
    uid = pod.metadata.uid or ""
    present = {(c.name, c.is_init) for c in containers if c.pod.uid == uid and not c.is_sandbox}
    ref = PodRef(uid, pod.metadata.namespace or "default", pod.metadata.name)
    stand_ins = []
    for is_init, field, specs in (
        (True, "initContainerStatuses", pod.spec.init_containers or []),
        (False, "containerStatuses", pod.spec.containers),
    ):
        names = {spec.name for spec in specs}
        for status in previous.get(field) or []:
            name = status.get("name")
            ended = last_termination(status)
            if name in names and (name, is_init) not in present and ended is not None:
                stand_ins.append(_stand_in(ref, name, is_init, status, ended))
    return stand_ins


def _stand_in(ref: PodRef, name: str, is_init: bool, status: dict[str, Any], ended: dict[str, Any]) -> Container:
    started, finished = parse_time(ended.get("startedAt")), parse_time(ended.get("finishedAt"))
    # A status keeps whole seconds: created at the last moment of the second it started in, so an init container
    # started in its sandbox's second still counts as run in that sandbox (``policy._Planner.init_done``).
    created = started + WHOLE_SECOND if started is not None else None
    kind, _, ident = (ended.get("containerID") or status.get("containerID") or "").partition("://")
    return Container(
        id=ContainerID(kind or "docker", ident),
        pod=ref,
        name=name,
        image=status.get("image") or "",
        image_id=(status.get("imageID") or "").removeprefix("docker://"),
        state=ContainerState.EXITED,
        restart_count=int(status.get("restartCount") or 0),
        is_init=is_init,
        created_at=created,
        started_at=started,
        finished_at=finished,
        exit_code=int(ended.get("exitCode") or 0),
        reason=ended.get("reason") or "",
    )
