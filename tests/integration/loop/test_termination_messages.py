"""Termination messages through the whole loop with the real Docker and kubectl, after Kubernetes' node conformance
test (test/e2e/common/node/runtime.go, "on terminated container ... should report termination message"): what the
container wrote to its terminationMessagePath, or its log's tail with FallbackToLogsOnError, in ``kubectl get pod -o
yaml``."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.integration.loop.conftest import Cluster, busybox_pod

# name -> (command, container fields, restart policy, the message kube reports; None: no message)
CASES: dict[str, tuple[str, dict[str, Any], str, str | None]] = {
    "term-file": ("echo -n DONE > /dev/termination-log", {}, "Never", "DONE"),
    "term-nonroot": (
        "echo -n DONE > /dev/termination-custom-log; exit 1",
        {"terminationMessagePath": "/dev/termination-custom-log", "securityContext": {"runAsUser": 1000}},
        "Never",
        "DONE",
    ),
    "term-logs": ("echo -n DONE; exit 1", {"terminationMessagePolicy": "FallbackToLogsOnError"}, "Never", "DONE"),
    "term-logs-ok": ("echo -n OK", {"terminationMessagePolicy": "FallbackToLogsOnError"}, "Never", None),
    "term-logs-file": (
        "echo -n OK > /dev/termination-log; echo -n ignored; exit 0",
        {"terminationMessagePolicy": "FallbackToLogsOnError"},
        "Never",
        "OK",
    ),
}


def pod_yaml(cluster: Cluster, name: str) -> dict[str, Any]:
    return yaml.safe_load(cluster.kubectl("get", "pod", name, "-o", "yaml").stdout)


def terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    statuses = pod["status"].get("containerStatuses") or []
    return statuses[0]["state"].get("terminated") if statuses else None


@pytest.fixture
def ended(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """The pods of ``CASES``, each run to its end; their terminated states as kubectl shows them, by name."""
    pods = []
    for name, (command, fields, restart, _) in CASES.items():
        pod = busybox_pod(name, command, restartPolicy=restart)
        pod["spec"]["containers"][0].update(fields)
        pods.append(pod)
    cluster.apply(*pods)
    for name in CASES:
        cluster.wait_pod(name, terminated, 60, f"pod {name}'s container terminated")
    return {name: terminated(pod_yaml(cluster, name)) for name in CASES}


def test_kubectl_shows_the_termination_message_as_kube_reports_it(ended: dict[str, dict[str, Any]]) -> None:
    for name, (_, _, _, message) in CASES.items():
        assert ended[name].get("message") == message, (name, ended[name])
    assert ended["term-logs"]["exitCode"] == 1 and ended["term-logs"]["reason"] == "Error"


def test_the_message_of_a_restarted_container_moves_to_last_state(cluster: Cluster) -> None:
    cluster.apply(busybox_pod("term-again", "echo -n run $(date +%s%N) > /dev/termination-log; sleep 1; exit 2",
                              restartPolicy="OnFailure"))  # fmt: skip

    def restarted(pod: dict[str, Any]) -> bool:
        statuses = pod["status"].get("containerStatuses") or []
        return bool(statuses) and statuses[0]["restartCount"] >= 1 and "terminated" in statuses[0]["lastState"]

    cluster.wait_pod("term-again", restarted, 60, "term-again restarted")
    (status,) = pod_yaml(cluster, "term-again")["status"]["containerStatuses"]
    assert status["lastState"]["terminated"]["message"].startswith("run ")
