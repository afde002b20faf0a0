"""kube-apiserver behaviours kubectl meets: default ServiceAccounts, a failed JSON-patch test, creates that carry a
resourceVersion, deletecollection."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from edgeworkers.kubeclient import ApiError

if TYPE_CHECKING:
    from conftest import Cloud


def test_each_namespace_has_its_default_service_account(cloud: Cloud) -> None:
    assert cloud.kubectl("get", "serviceaccount", "default", "-o", "name").stdout.strip() == "serviceaccount/default"
    cloud.kubectl("create", "namespace", "conformance")
    listed = cloud.kubectl("get", "sa", "-n", "conformance").stdout.split("\n")
    assert listed[0].split() == ["NAME", "SECRETS", "AGE"] and listed[1].split()[:2] == ["default", "0"]
    cloud.kubectl("delete", "namespace", "conformance")
    gone = cloud.kubectl("get", "sa", "default", "-n", "conformance", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_a_failed_json_patch_test_is_refused_and_changes_nothing(cloud: Cloud) -> None:
    cloud.kubectl("create", "configmap", "patched", "--from-literal=k=v")
    failed = cloud.kubectl("patch", "configmap", "patched", "--type=json", "-p",
                           '[{"op":"test","path":"/data/k","value":"other"},{"op":"replace","path":"/data/k",'
                           '"value":"w"}]', check=False)
    assert failed.returncode != 0 and "test operation failed" in failed.stderr
    assert json.loads(cloud.kubectl("get", "cm", "patched", "-o", "json").stdout)["data"] == {"k": "v"}


def test_a_create_carrying_a_resource_version_is_refused(cloud: Cloud) -> None:
    """kubectl clears the field before it creates (its resource helper does); a client that does not is refused."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "with-rv", "resourceVersion": "12"}}
    with pytest.raises(ApiError) as refused:
        cloud.api.post("/api/v1/namespaces/default/configmaps", body)
    assert refused.value.code == 400
    assert refused.value.message == "resourceVersion should not be set on objects to be created"


def test_deletecollection_with_a_label_selector(cloud: Cloud) -> None:
    for name, tier in (("dc-a", "web"), ("dc-b", "web"), ("dc-c", "db")):
        cloud.kubectl("create", "configmap", name, "--from-literal=k=v")
        cloud.kubectl("label", "configmap", name, f"tier={tier}")
    deleted = cloud.api._request("DELETE", "/api/v1/namespaces/default/configmaps", params={"labelSelector": "tier=web"})
    assert sorted(i["metadata"]["name"] for i in deleted["items"]) == ["dc-a", "dc-b"]
    left = cloud.kubectl("get", "cm", "-l", "tier", "-o", "name").stdout.split()
    assert left == ["configmap/dc-c"]
