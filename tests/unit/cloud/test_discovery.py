"""Discovery documents in the shapes kubectl reads."""
from __future__ import annotations

from edgeworkers.cloud import discovery


def test_version_names_kubernetes_1_32():
    info = discovery.version()
    assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "32", "v1.32.0")
    assert info["platform"].startswith("linux/")


def test_api_versions_carries_the_server_address():
    assert discovery.api_versions("127.0.0.1:6443") == {
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    }


def test_api_group_list_has_coordination_v1():
    groups = discovery.api_group_list()
    assert groups["kind"] == "APIGroupList" and groups["apiVersion"] == "v1"
    assert groups["groups"] == [{
        "name": "coordination.k8s.io",
        "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"},
    }, {
        "name": "metrics.k8s.io",
        "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
        "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"},
    }]
    assert discovery.api_group("coordination.k8s.io")["kind"] == "APIGroup"
    assert discovery.api_group("apps") is None and discovery.api_group("") is None


def test_core_v1_resources():
    doc = discovery.core_v1_resources()
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert set(by_name) >= {"pods", "pods/status", "pods/log", "pods/exec", "pods/binding", "configmaps",
                            "secrets", "nodes", "nodes/status", "namespaces", "events"}
    assert by_name["pods"] == {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                               "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                               "shortNames": ["po"], "categories": ["all"]}
    assert by_name["configmaps"]["shortNames"] == ["cm"]
    assert by_name["nodes"]["namespaced"] is False and by_name["nodes"]["shortNames"] == ["no"]
    assert by_name["namespaces"]["shortNames"] == ["ns"] and by_name["events"]["shortNames"] == ["ev"]
    assert by_name["pods/log"]["verbs"] == ["get"] and by_name["pods/status"]["singularName"] == ""


def test_coordination_v1_resources():
    doc = discovery.coordination_v1_resources()
    assert doc["groupVersion"] == "coordination.k8s.io/v1"
    assert doc["resources"] == [{"name": "leases", "singularName": "lease", "namespaced": True, "kind": "Lease",
                                 "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}]
