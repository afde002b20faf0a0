"""What kubectl's typed clients send as protobuf (`kubectl create deployment|job|service`), stored as kube would."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from edgeworkers.kubeclient import ApiError

if TYPE_CHECKING:
    from conftest import Cloud


def get(cloud: Cloud, *args: str) -> dict:
    return json.loads(cloud.kubectl("get", *args, "-o", "json").stdout)


def test_create_deployment_and_expose_it(cloud: Cloud) -> None:
    cloud.kubectl("create", "deployment", "pb-web", "--image=busybox", "--replicas=2", "--port=8080")
    deployment = get(cloud, "deploy", "pb-web")
    spec = deployment["spec"]
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "pb-web"}}
    assert spec["template"]["metadata"]["labels"] == {"app": "pb-web"}
    [container] = spec["template"]["spec"]["containers"]
    assert container["name"] == "busybox" and container["image"] == "busybox"
    assert container["ports"][0]["containerPort"] == 8080
    cloud.kubectl("expose", "deployment", "pb-web", "--port=80")
    service = get(cloud, "service", "pb-web")
    assert service["spec"]["ports"][0]["port"] == 80 and service["spec"]["selector"] == {"app": "pb-web"}


def test_create_job(cloud: Cloud) -> None:
    cloud.kubectl("create", "job", "pb-job", "--image=busybox", "--", "true")
    spec = get(cloud, "job", "pb-job")["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["command"] == ["true"] and spec["containers"][0]["image"] == "busybox"


def test_create_service_clusterip(cloud: Cloud) -> None:
    cloud.kubectl("create", "service", "clusterip", "pb-svc", "--tcp=80:8080")
    spec = get(cloud, "service", "pb-svc")["spec"]
    assert spec["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert spec["selector"] == {"app": "pb-svc"} and spec["type"] == "ClusterIP"


def test_a_malformed_protobuf_body_is_a_400_status(cloud: Cloud) -> None:
    body = b"k8s\x00\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment\x12\x05\x0a\x09trunc"
    with pytest.raises(ApiError) as caught:
        cloud.api._request("POST", "/apis/apps/v1/namespaces/default/deployments", data=body,
                           headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    assert caught.value.code == 400 and "unable to decode protobuf body" in str(caught.value)
