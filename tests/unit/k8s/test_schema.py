from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from edgeworkers.k8s.schema import KINDS, field_shape
from edgeworkers.k8s.validation import unknown_fields


@pytest.mark.parametrize(
    ("kind", "obj", "paths"),
    [
        ("Pod", {"spec": {"containers": [{"name": "a", "imagex": "b"}]}}, ["spec.containers[0].imagex"]),
        ("Pod", {"spec": {"bogus": 1}, "metadata": {"labelz": {}}}, ["metadata.labelz", "spec.bogus"]),
        (
            "Pod",
            {"spec": {"containers": [{"name": "a", "livenessProbe": {"httpGet": {"port": 1, "pth": "/"}}}]}},
            ["spec.containers[0].livenessProbe.httpGet.pth"],
        ),
        ("Pod", {"spec": {"volumes": [{"name": "v", "configMap": {"nme": "c"}}]}}, ["spec.volumes[0].configMap.nme"]),
        ("Pod", {"spec": {"affinity": {"anything": {"goes": "here"}}, "tolerations": [{"key": "k", "x": 1}]}},
         ["spec.tolerations[0].x"]),
        (
            "Pod",
            {"status": {"podIP": "1.2.3.4", "containerStatuses": [{"name": "c", "foo": 1}]}},
            ["status.containerStatuses[0].foo"],
        ),
        ("ConfigMap", {"data": {"any-key": "v"}, "binaryData": {}, "immutable": True, "extra": 1}, ["extra"]),
        ("Secret", {"data": {}, "stringData": {"a": "b"}, "type": "Opaque", "strngData": {}}, ["strngData"]),
        (
            "Node",
            {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 10250, "port": 1}}}},
            ["status.daemonEndpoints.kubeletEndpoint.port"],
        ),
        ("Event", {"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started", "reasn": "x"}, ["reasn"]),
        ("Namespace", {"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes"]}}, []),
        ("Lease", {"spec": {"holderIdentity": "n", "renewTme": "x"}, "whatever": 1}, ["spec.renewTme", "whatever"]),
        ("Binding", {"whatever": 1}, []),
    ],
)
def test_unknown_fields_are_named_like_the_api_servers_strict_errors(
    kind: str, obj: dict[str, Any], paths: list[str]
) -> None:
    assert unknown_fields(kind, {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, **obj}) == paths


def test_docs_manifests_have_no_unknown_fields() -> None:
    for manifest in yaml.safe_load_all((Path(__file__).parent / "docs_manifests.yaml").read_text()):
        assert unknown_fields("Pod", manifest) == [], manifest["metadata"]["name"]


def test_kubectl_run_dry_run_output_is_accepted() -> None:
    generated = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"creationTimestamp": None, "labels": {"run": "web"}, "name": "web"},
        "spec": {
            "containers": [{"image": "busybox", "name": "web", "resources": {}}],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
        },
        "status": {},
    }
    assert unknown_fields("Pod", generated) == []


def test_full_node_and_event_objects_have_no_unknown_fields() -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "edge-1", "labels": {"kubernetes.io/hostname": "edge-1"}},
        "spec": {
            "podCIDR": "10.0.0.0/24",
            "podCIDRs": ["10.0.0.0/24"],
            "taints": [{"key": "k", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                    "lastTransitionTime": "2024-01-01T00:00:00Z",
                    "reason": "KubeletReady",
                    "message": "ok",
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "edge-1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10350}},
            "nodeInfo": {
                "machineID": "m",
                "systemUUID": "s",
                "bootID": "b",
                "kernelVersion": "6",
                "osImage": "Debian",
                "containerRuntimeVersion": "docker://20.10",
                "kubeletVersion": "v1.32.0",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [{"names": ["busybox:latest"], "sizeBytes": 1000}],
        },
    }
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "namespace": "default",
            "name": "web",
            "uid": "u",
            "apiVersion": "v1",
            "resourceVersion": "1",
            "fieldPath": "spec.containers{web}",
        },
        "reason": "Started",
        "message": "Started container web",
        "type": "Normal",
        "count": 1,
        "source": {"component": "kubelet", "host": "edge-1"},
        "firstTimestamp": "2024-01-01T00:00:00Z",
        "lastTimestamp": "2024-01-01T00:00:00Z",
        "eventTime": None,
        "reportingComponent": "kubelet",
        "reportingInstance": "edge-1",
    }
    assert unknown_fields("Node", node) == []
    assert unknown_fields("Event", event) == []


# --- the declared fields against the official core/v1 schema (the kubernetes client's generated models) ---

CLIENT_MODELS = {
    "Pod": "V1Pod",
    "ConfigMap": "V1ConfigMap",
    "Secret": "V1Secret",
    "Node": "V1Node",
    "Event": "CoreV1Event",
    "Namespace": "V1Namespace",
    "Lease": "V1Lease",
}


def _client_model(type_name: str) -> Any:
    import kubernetes.client

    match = re.fullmatch(r"(?:List\[|Dict\[str, )?(\w+)\]?", type_name)
    model = getattr(kubernetes.client, match.group(1), None) if match else None
    return model if hasattr(model, "openapi_types") else None


def _compare(mine: type[BaseModel], theirs: Any, path: str, seen: set, missing: list[str], extra: list[str]) -> None:
    if (mine, theirs) in seen:
        return
    seen.add((mine, theirs))
    official = {theirs.attribute_map[attr]: kind for attr, kind in theirs.openapi_types.items()}
    declared = {info.alias or name: info.annotation for name, info in mine.model_fields.items()}
    missing += [f"{path}.{name}" for name in official if name not in declared]
    extra += [f"{path}.{name}" for name in declared if name not in official]
    for name, annotation in declared.items():
        inner = field_shape(annotation)[1]
        sub = _client_model(official.get(name, ""))
        if inner is not None and sub is not None:
            _compare(inner, sub, f"{path}.{name}", seen, missing, extra)


@pytest.mark.parametrize("kind", sorted(CLIENT_MODELS))
def test_models_declare_exactly_the_official_core_v1_fields(kind: str) -> None:
    import kubernetes.client

    missing: list[str] = []
    extra: list[str] = []
    _compare(KINDS[kind], getattr(kubernetes.client, CLIENT_MODELS[kind]), kind, set(), missing, extra)
    assert (missing, extra) == ([], [])
