"""An evicted pod's status, as kubelet's eviction manager leaves it: phase ``Failed``, reason ``Evicted``, the message
naming the resource, the ``DisruptionTarget`` condition (``TerminationByKubelet``), its running containers shown
terminated. An evicted pod is terminal: the sync never starts its containers again (``PodSyncer.sync``)."""
from __future__ import annotations

import copy
from typing import Any

EVICTED = "Evicted"


def is_evicted(status: dict[str, Any] | None) -> bool:
    return status is not None and status.get("phase") == "Failed" and status.get("reason") == EVICTED


def evicted_status(previous: dict[str, Any] | None, message: str, now: str) -> dict[str, Any]:
    """``previous`` (the pod's last status) turned into the evicted pod's; ``now`` the formatted time."""
    status = copy.deepcopy(previous or {})
    status.update(phase="Failed", reason=EVICTED, message=message)
    names = []
    for container in status.get("containerStatuses") or []:
        names.append(container.get("name", ""))
        running = (container.get("state") or {}).get("running")
        if running is not None:  # killed (SIGKILL: 137) by the eviction
            container["state"] = {"terminated": {
                "exitCode": 137, "reason": "Error", "startedAt": running.get("startedAt"), "finishedAt": now,
                **({"containerID": container["containerID"]} if container.get("containerID") else {}),
            }}
        container.update(ready=False, started=False)
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    for condition in conditions:
        if condition.get("type") in ("Ready", "ContainersReady") and condition.get("status") == "True":
            condition.update(status="False", lastTransitionTime=now, reason="ContainersNotReady",
                             message=f"containers with unready status: [{' '.join(names)}]")
    conditions.append({"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": now, "reason": "TerminationByKubelet", "message": message})
    status["conditions"] = conditions
    return status
