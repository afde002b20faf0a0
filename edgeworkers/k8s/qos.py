"""A pod's QoS class from its spec (the API's ``GetPodQOS``, pkg/apis/core/v1/helper/qos): its ``status.qosClass``,
and what kubelet's OOM policy (``pods.qos``) and eviction rank pods by."""
from __future__ import annotations

from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.quantity import parse_quantity


def qos_class(pod: Pod) -> str:
    """Guaranteed, Burstable or BestEffort (kubelet's GetPodQOS, for cpu and memory)."""
    any_set, guaranteed = False, True
    for container in pod.spec.all_containers:
        resources = container.resources
        limits = {k: v for k, v in ((resources.limits if resources else None) or {}).items() if k in ("cpu", "memory")}
        requests = {**limits, **((resources.requests if resources else None) or {})}
        requests = {k: v for k, v in requests.items() if k in ("cpu", "memory")}
        any_set = any_set or any(parse_quantity(v) != 0 for v in requests.values())
        if set(limits) != {"cpu", "memory"} or any(
            parse_quantity(requests[k]) != parse_quantity(limits[k]) for k in limits
        ):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
