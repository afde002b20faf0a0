"""kubelet's OOM score policy (pkg/kubelet/qos/policy.go), from a table."""
from __future__ import annotations

from typing import Any

import pytest

from edgeworkers.pods.qos import BEST_EFFORT, GUARANTEED, SANDBOX, oom_score_adj
from tests.unit.pods.podkit import container, make_pod

GI = 1024**3
CAPACITY = 4 * GI


def resources(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> dict[str, Any]:
    return {"resources": {k: v for k, v in (("requests", requests), ("limits", limits)) if v}}


@pytest.mark.parametrize(
    ("fields", "capacity", "expected"),
    [
        ({}, CAPACITY, 1000),  # BestEffort
        (resources(limits={"cpu": "1", "memory": "1Gi"}), CAPACITY, -997),  # Guaranteed (requests default to limits)
        (resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}), CAPACITY, -997),
        (resources({"memory": "1Gi"}), CAPACITY, 750),  # Burstable: 1000 - 1000 * 1/4
        (resources({"memory": "400Mi"}), CAPACITY, 903),  # 1000 - 97.6 (integer division)
        (resources({"cpu": "100m"}), CAPACITY, 999),  # no memory request: 1000, one below BestEffort
        (resources({"memory": "1"}), CAPACITY, 999),  # a tiny request: 1000 as well
        (resources({"memory": "4Gi"}), CAPACITY, 3),  # all the node's memory: 0, clamped to 1000 - 997
        (resources({"memory": "8Gi"}), CAPACITY, 3),  # more than the node has: negative, clamped
        (resources({"memory": "1Gi"}), 0, 999),  # capacity unknown: scored as no request
    ],
)
def test_the_score_of_each_qos_class(fields: dict[str, Any], capacity: int, expected: int) -> None:
    pod = make_pod(containers=[container("app", **fields)])
    assert oom_score_adj(pod, pod.spec.containers[0], capacity) == expected


def test_each_container_of_a_burstable_pod_is_scored_by_its_own_request() -> None:
    pod = make_pod(containers=[container("big", **resources({"memory": "2Gi"})), container("none")])
    assert [oom_score_adj(pod, c, CAPACITY) for c in pod.spec.containers] == [500, 999]


def test_a_sidecar_scores_no_higher_than_the_smallest_regular_container() -> None:
    sidecar = container("proxy", restartPolicy="Always", **resources({"memory": "100Mi"}))
    pod = make_pod(containers=[container("app", **resources({"memory": "2Gi"}))], init=[sidecar])
    assert oom_score_adj(pod, pod.spec.init_containers[0], CAPACITY) == 500
    plain_init = make_pod(containers=[container("app", **resources({"memory": "2Gi"}))],
                          init=[container("setup", **resources({"memory": "100Mi"}))])
    assert oom_score_adj(plain_init, plain_init.spec.init_containers[0], CAPACITY) == 976


@pytest.mark.parametrize(
    ("annotations", "priority", "expected"),
    [
        ({"kubernetes.io/config.source": "file"}, None, GUARANTEED),  # a static pod of the class
        ({"kubernetes.io/config.mirror": "abc"}, None, GUARANTEED),
        ({}, 2_000_001_000, GUARANTEED),  # system-critical priority
        ({}, 1000, BEST_EFFORT),  # the class name alone makes no pod critical
    ],
)
def test_node_critical_pods_score_as_guaranteed(annotations: dict[str, str], priority: int | None,
                                                 expected: int) -> None:
    pod = make_pod(priorityClassName="system-node-critical", **({"priority": priority} if priority else {}))
    pod.metadata.annotations = annotations
    assert oom_score_adj(pod, pod.spec.containers[0], CAPACITY) == expected


def test_the_sandbox_sits_between_guaranteed_containers_and_the_agent() -> None:
    assert -999 < SANDBOX < GUARANTEED
