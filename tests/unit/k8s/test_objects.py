from __future__ import annotations

from edgeworkers.k8s.configmap import ConfigMap
from edgeworkers.k8s.event import Event
from edgeworkers.k8s.node import Node
from edgeworkers.k8s.secret import Secret, default_secret


def test_configmap_round_trip() -> None:
    raw = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "resourceVersion": "7"},
        "data": {"a": "1"},
        "binaryData": {"b": "AA=="},
        "immutable": True,
    }
    cm = ConfigMap.from_dict(raw)
    assert (cm.key, cm.data, cm.binary_data, cm.metadata.resource_version) == ("ns/c", {"a": "1"}, {"b": "AA=="}, "7")
    assert cm.to_dict() == raw


def test_secret_decodes_data_with_string_data_on_top() -> None:
    secret = Secret.from_dict({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "z"}})
    assert secret.type == "Opaque"
    assert secret.decoded() == {"a": b"x", "b": b"z"}


def test_default_secret_merges_string_data_like_the_api_server() -> None:
    raw = {"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "y"}}
    assert default_secret(raw) == {
        "metadata": {"name": "s"},
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "data": {"a": "eA==", "b": "eQ=="},
    }
    assert "stringData" in raw


def test_node_uses_kubernetes_field_names() -> None:
    node = Node.from_dict(
        {
            "metadata": {"name": "edge-1"},
            "spec": {"podCIDR": "10.0.0.0/24"},
            "status": {
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10350}},
                "capacity": {"cpu": 2},
                "nodeInfo": {"machineID": "m", "kubeletVersion": "v1"},
            },
        }
    )
    assert node.key == "edge-1"
    assert node.spec.pod_cidr == "10.0.0.0/24"
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10350
    out = node.to_dict()
    assert out["spec"] == {"podCIDR": "10.0.0.0/24"}
    assert out["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10350}}
    assert out["status"]["capacity"] == {"cpu": "2"}
    assert out["status"]["nodeInfo"]["machineID"] == "m"


def test_event_serialises_camel_case() -> None:
    event = Event(
        metadata={"name": "web.1", "namespace": "default"},
        involved_object={"kind": "Pod", "name": "web", "field_path": "spec.containers{web}"},
        reason="Started",
        type="Normal",
        count=1,
        source={"component": "kubelet", "host": "edge-1"},
        first_timestamp="2024-01-01T00:00:00Z",
    )
    assert event.to_dict() == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
        "reason": "Started",
        "source": {"component": "kubelet", "host": "edge-1"},
        "firstTimestamp": "2024-01-01T00:00:00Z",
        "count": 1,
        "type": "Normal",
    }
