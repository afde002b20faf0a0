"""Discovery documents in the shapes kubectl reads."""
from __future__ import annotations

import pytest

from edgeworkers.cloud import discovery

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBECTL_ACCEPT = f"{AGGREGATED_V2},application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList," \
                 "application/json"


def test_version_names_kubernetes_1_32():
    info = discovery.version()
    assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "32", "v1.32.0")
    assert info["platform"].startswith("linux/")


def test_api_versions_carries_the_server_address():
    assert discovery.api_versions("127.0.0.1:6443") == {
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    }


def test_api_group_list_has_every_served_group():
    groups = discovery.api_group_list()
    assert groups["kind"] == "APIGroupList" and groups["apiVersion"] == "v1"
    assert [g["name"] for g in groups["groups"]] == ["apps", "batch", "coordination.k8s.io", "discovery.k8s.io",
                                                     "authentication.k8s.io", "metrics.k8s.io"]
    assert groups["groups"][2:3] + groups["groups"][4:] == [{
        "name": "coordination.k8s.io",
        "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"},
    }, {
        "name": "authentication.k8s.io",
        "versions": [{"groupVersion": "authentication.k8s.io/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "authentication.k8s.io/v1", "version": "v1"},
    }, {
        "name": "metrics.k8s.io",
        "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
        "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"},
    }]
    assert discovery.api_group("coordination.k8s.io")["kind"] == "APIGroup"
    assert discovery.api_group("policy") is None and discovery.api_group("") is None


def test_core_v1_resources():
    doc = discovery.resource_list("api/v1")
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
    doc = discovery.resource_list("apis/coordination.k8s.io/v1")
    assert doc["groupVersion"] == "coordination.k8s.io/v1"
    assert doc["resources"] == [{"name": "leases", "singularName": "lease", "namespaced": True, "kind": "Lease",
                                 "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}]


def test_aggregated_discovery_lists_every_served_group_version_and_resource():
    names = [item["metadata"].get("name", "") for item in discovery.aggregated(False, "v2")["items"]]
    assert names == [gv.group for gv in discovery.SERVED if gv.group]
    core = discovery.aggregated(True, "v2beta1")
    assert core["apiVersion"] == "apidiscovery.k8s.io/v2beta1" and core["items"][0]["metadata"] == {
        "creationTimestamp": None}
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"} and pods["scope"] == "Namespaced"
    assert {s["subresource"] for s in pods["subresources"]} == {
        r.name.partition("/")[2] for r in discovery.CORE_V1 if r.name.startswith("pods/")}


@pytest.mark.parametrize(("accept", "version"), [
    (KUBECTL_ACCEPT, "v2"),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", "v2beta1"),
    ("application/json, " + AGGREGATED_V2, None),  # plain JSON first
    ("application/json;g=apidiscovery.k8s.io;v=v9;as=APIGroupDiscoveryList", None),
    ("", None),
])
def test_aggregated_version_follows_the_accept_header(accept, version):
    assert discovery.aggregated_version(accept) == version
