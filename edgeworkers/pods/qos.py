"""Which processes the kernel sacrifices first when the node runs out of memory: kubelet's QoS policy
(pkg/kubelet/qos/policy.go), as each container's ``oom_score_adj``.

The kernel kills the process with the highest OOM score, about ten times the share of memory it uses (in per mille)
plus its ``oom_score_adj`` (-1000 to 1000). So: BestEffort containers go first (1000), Burstable ones by how much
memory they asked for (a container using more than its request scores about 1000), Guaranteed ones (-997) and the
node-critical pods after them; the pod's sandbox (-998) and the agent itself last (kubelet's own -999: set by
``edgeworkers/process.py`` in each long-running process, and by ops/services on the agent's Redis).

Pure: the pod, the container and the node's memory capacity in, a score out (the pod's QoS class: ``k8s.qos``).
"""
from __future__ import annotations

from edgeworkers.constants import ANNOTATION_MIRROR, ANNOTATION_SOURCE, SOURCE_API
from edgeworkers.k8s.pod import Container, Pod
from edgeworkers.k8s.qos import qos_class
from edgeworkers.k8s.quantity import to_bytes

GUARANTEED = -997  # kubelet's guaranteedOOMScoreAdj
BEST_EFFORT = 1000  # besteffortOOMScoreAdj
SANDBOX = -998  # dockershim's PodInfraOOMAdj: the sandbox holds the pod's namespaces
# A pod is node-critical (scored as Guaranteed whatever its resources) with this priority class, when it is a static
# or mirror pod or has a system-critical priority (kubelet's IsNodeCriticalPod).
SYSTEM_NODE_CRITICAL = "system-node-critical"
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000


def is_node_critical(pod: Pod) -> bool:
    """kubelet's IsNodeCriticalPod: a critical pod (static, mirror, or system-critical priority) of the
    ``system-node-critical`` class."""
    annotations = pod.metadata.annotations or {}
    critical = (annotations.get(ANNOTATION_SOURCE, SOURCE_API) != SOURCE_API or ANNOTATION_MIRROR in annotations
                or (pod.spec.priority or 0) >= SYSTEM_CRITICAL_PRIORITY)
    return critical and pod.spec.priority_class_name == SYSTEM_NODE_CRITICAL


def _memory_request(container: Container) -> int:
    resources = container.resources
    limits = (resources.limits if resources else None) or {}
    requests = {**limits, **((resources.requests if resources else None) or {})}  # a limit alone is its request
    return to_bytes(requests["memory"]) if "memory" in requests else 0


def _burstable(memory_request: int, memory_capacity: int) -> int:
    """1000 less the request's share of the node's memory in per mille (Go's integer division: both positive)."""
    return 1000 - (1000 * memory_request) // memory_capacity if memory_capacity > 0 else BEST_EFFORT


def oom_score_adj(pod: Pod, container: Container, memory_capacity: int) -> int:
    """The ``oom_score_adj`` kubelet gives ``container`` of ``pod`` (GetContainerOOMScoreAdjust) on a node with
    ``memory_capacity`` bytes (0 when unknown: a Burstable container is then scored as one requesting nothing).

    A Burstable container's score is clamped between Guaranteed's and BestEffort's: to at least 3 (1000 - 997) and
    at most 999. A sidecar (an init container that restarts ``Always``) scores no higher than the pod's regular
    container with the smallest memory request, so it outlives them.
    """
    if is_node_critical(pod):
        return GUARANTEED
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED
    if qos == "BestEffort":
        return BEST_EFFORT
    score = _burstable(_memory_request(container), memory_capacity)
    if container.restart_policy == "Always" and any(c.name == container.name for c in pod.spec.init_containers or []):
        smallest = min((_memory_request(c) for c in pod.spec.containers), default=0)
        score = min(score, _burstable(smallest, memory_capacity))
    return min(max(score, 1000 + GUARANTEED), BEST_EFFORT - 1)


__all__ = ["BEST_EFFORT", "GUARANTEED", "SANDBOX", "is_node_critical", "oom_score_adj", "qos_class"]
