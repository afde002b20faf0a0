"""The fleet benchmark's pure parts (ops/bench/fleet.py, hollow.py): how a call is classified, and the workload."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ops/bench"))
from fleet import Size, bare_pods, controller_objects, deployment_replicas  # noqa: E402 - the benches' own folder
from hollow import classify  # noqa: E402


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", ("list", "pods")),
    ("GET", "/api/v1/namespaces/default/pods/web", ("get", "pods")),
    ("PATCH", "/api/v1/namespaces/default/pods/web/status", ("patch", "pods/status")),
    ("PATCH", "/api/v1/nodes/n1/status", ("patch", "nodes/status")),
    ("POST", "/api/v1/nodes", ("create", "nodes")),
    ("GET", "/api/v1/namespaces/default", ("get", "namespaces")),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", ("update", "leases")),
    ("POST", "/apis/apps/v1/namespaces/default/deployments", ("create", "deployments")),
    ("DELETE", "/api/v1/namespaces/default/pods/web", ("delete", "pods")),
])
def test_a_call_is_classified_by_kube_apiservers_verb_and_resource(method, path, expected) -> None:
    assert classify(method, path) == expected


def test_the_deployments_hold_what_the_daemonset_does_not_spread_evenly() -> None:
    assert deployment_replicas(Size(200, 2000), 20) == [90] * 20
    assert deployment_replicas(Size(5, 20), 20) == [1] * 15
    assert deployment_replicas(Size(5, 27), 3) == [8, 7, 7]
    assert deployment_replicas(Size(5, 5), 20) == []


def test_the_bare_pods_are_what_the_controllers_would_make() -> None:
    pods = bare_pods(Size(3, 9), 2)
    assert len(pods) == 9 and len({p["metadata"]["name"] for p in pods}) == 9
    daemon = pods[0]
    [term] = daemon["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert term == {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["hollow-000"]}]}
    assert all("affinity" not in p["spec"] for p in pods[3:])
    kinds = [(path.rsplit("/", 1)[1], obj["spec"].get("replicas")) for path, obj in controller_objects(Size(3, 9), 2)]
    assert kinds == [("daemonsets", None), ("deployments", 3), ("deployments", 3)]


def test_a_document_outside_the_resources_is_classified_by_its_path() -> None:
    assert classify("GET", "/version") == ("get", "/version")
    assert classify("GET", "/apis/apps/v1") == ("get", "/apis/apps/v1")
