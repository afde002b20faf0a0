from __future__ import annotations

import copy
from typing import Any

import pytest

from edgeworkers.k8s.pod import Pod, default_pod, default_pull_policy


def manifest() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "uid": "u-1"},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "busybox:1.28",
                    "command": ["httpd", "-f"],
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b"}}},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    ],
                    "resources": {"limits": {"cpu": 1, "memory": "64Mi"}},
                    "livenessProbe": {"httpGet": {"port": "http"}, "initialDelaySeconds": 2},
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "futureField": {"kept": True},
                }
            ],
            "volumes": [{"name": "data"}, {"name": "cfg", "configMap": {"name": "cfg"}}],
            "affinity": {"nodeAffinity": {}},
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
        "status": {"phase": "Running", "podIP": "10.0.0.2", "hostIP": "127.0.0.1"},
    }


def test_model_reads_typed_fields_with_camel_case_aliases() -> None:
    pod = Pod.from_dict(manifest())
    container = pod.spec.containers[0]
    assert pod.key == "default/web"
    assert container.ports[0].container_port == 80 and container.ports[0].protocol == "TCP"
    assert container.env[1].value_from.config_map_key_ref.key == "b"
    assert container.resources.limits == {"cpu": "1", "memory": "64Mi"}
    assert container.liveness_probe.http_get.port == "http"
    assert container.liveness_probe.period_seconds == 10
    assert container.readiness_probe.period_seconds == 2
    assert container.pull_policy == "IfNotPresent"
    assert pod.spec.restart_policy == "Always" and pod.spec.termination_grace_period_seconds == 30
    assert pod.status.pod_ip == "10.0.0.2"
    assert [v.sources for v in pod.spec.volumes] == [[], ["configMap"]]


def test_round_trip_keeps_fields_the_agent_does_not_act_on() -> None:
    out = Pod.from_dict(manifest()).to_dict()
    assert out["spec"]["containers"][0]["futureField"] == {"kept": True}
    assert out["spec"]["affinity"] == {"nodeAffinity": {}}
    assert out["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert out["status"] == {"phase": "Running", "podIP": "10.0.0.2", "hostIP": "127.0.0.1"}
    assert out["metadata"] == manifest()["metadata"]
    assert Pod.from_dict(out).to_dict() == out


def test_status_serialises_with_kubernetes_names() -> None:
    pod = Pod.from_dict(
        {
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {
                "containerStatuses": [
                    {
                        "name": "c",
                        "state": {"terminated": {"exitCode": 1, "reason": "Error", "containerID": "docker://a"}},
                        "imageID": "docker://sha256:1",
                        "containerID": "docker://a",
                    }
                ],
                "podIPs": [{"ip": "10.0.0.2"}],
            },
        }
    )
    status = pod.to_dict()["status"]
    assert status["containerStatuses"][0] == {
        "name": "c",
        "state": {"terminated": {"exitCode": 1, "reason": "Error", "containerID": "docker://a"}},
        "ready": False,
        "restartCount": 0,
        "image": "",
        "imageID": "docker://sha256:1",
        "containerID": "docker://a",
    }
    assert status["podIPs"] == [{"ip": "10.0.0.2"}]


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.28", "IfNotPresent"),
        ("localhost:5000/busybox", "Always"),
        ("localhost:5000/busybox:1.0", "IfNotPresent"),
        ("busybox@sha256:abc", "IfNotPresent"),
    ],
)
def test_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


def test_default_pod_applies_api_server_defaults_without_touching_the_input() -> None:
    original = manifest()
    original["spec"]["containers"].append({"name": "side", "image": "busybox"})
    before = copy.deepcopy(original)
    pod = default_pod(original)
    assert original == before
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    web, side = spec["containers"]
    assert web["imagePullPolicy"] == "IfNotPresent" and side["imagePullPolicy"] == "Always"
    assert web["terminationMessagePath"] == "/dev/termination-log"
    assert web["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert web["resources"] == {"limits": {"cpu": "1", "memory": "64Mi"}, "requests": {"cpu": "1", "memory": "64Mi"}}
    assert side["resources"] == {}
    assert web["livenessProbe"] == {
        "httpGet": {"port": "http", "path": "/", "scheme": "HTTP"},
        "initialDelaySeconds": 2,
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert web["readinessProbe"]["periodSeconds"] == 2
    assert web["env"][2]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert spec["volumes"] == [
        {"name": "data", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
    ]


def test_default_pod_stores_quantities_in_canonical_form() -> None:
    raw = manifest()
    raw["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 0.5, "memory": "1.5Gi"}, "requests": {"cpu": "100m"}}
    resources = default_pod(raw)["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "500m", "memory": "1536Mi"}, "requests": {"cpu": "100m", "memory": "1536Mi"}}


def test_default_pod_leaves_malformed_input_for_validation() -> None:
    raw = {
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}, "env": [{"valueFrom": []}]}]}
    }
    container = default_pod(raw)["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "lots"}
    assert container["env"] == [{"valueFrom": []}]


def test_default_pod_keeps_explicit_values() -> None:
    pod = manifest()
    pod["spec"].update(restartPolicy="Never", terminationGracePeriodSeconds=0)
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = default_pod(pod)["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"]) == ("Never", 0)
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
