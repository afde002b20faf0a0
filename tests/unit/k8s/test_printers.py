"""Server-side Tables: columns and cells as kubernetes' printers compute them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgeworkers.k8s.printers import (
    human_duration,
    node_roles,
    pod_status_reason,
    to_table,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def names(table: dict) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]


def wide(table: dict) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if c["priority"] == 1]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (200, "3m20s"), (300, "5m"),
     (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (5 * 3600 + 180, "5h3m"), (10 * 3600, "10h"),
     (47 * 3600, "47h"), (2 * 86400 + 3 * 3600, "2d3h"), (3 * 86400, "3d"), (10 * 86400, "10d"),
     (400 * 86400, "400d"), (3 * 365 * 86400 + 5 * 86400, "3y5d"), (9 * 365 * 86400, "9y")],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def pod(status: dict | None = None, init: int = 0, **meta) -> dict:
    spec = {"containers": [{"name": "a"}], "nodeName": "edge-1"}
    if init:
        spec["initContainers"] = [{"name": f"i{n}"} for n in range(init)]
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                         "creationTimestamp": ago(minutes=5), **meta},
            "spec": spec, "status": status or {"phase": "Pending"}}


def cs(state: dict, ready: bool = False, restarts: int = 0, last: dict | None = None, name: str = "a") -> dict:
    out = {"name": name, "state": state, "ready": ready, "restartCount": restarts}
    if last:
        out["lastState"] = last
    return out


RUNNING = {"running": {"startedAt": ago(minutes=1)}}


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        (pod(), "Pending"),
        (pod({"phase": "Pending", "containerStatuses": [cs({"waiting": {"reason": "ContainerCreating"}})]}),
         "ContainerCreating"),
        (pod({"phase": "Running", "containerStatuses": [cs(RUNNING, ready=True)]}), "Running"),
        (pod({"phase": "Running", "containerStatuses": [cs({"waiting": {"reason": "CrashLoopBackOff"}})]}),
         "CrashLoopBackOff"),
        (pod({"phase": "Pending", "containerStatuses": [cs({"waiting": {"reason": "ErrImageNeverPull"}})]}),
         "ErrImageNeverPull"),
        (pod({"phase": "Succeeded", "containerStatuses": [cs({"terminated": {"exitCode": 0, "reason": "Completed"}})]}),
         "Completed"),
        (pod({"phase": "Failed", "containerStatuses": [cs({"terminated": {"exitCode": 1, "reason": "Error"}})]}),
         "Error"),
        (pod({"phase": "Running", "containerStatuses": [cs({"terminated": {"exitCode": 3}})]}), "ExitCode:3"),
        (pod({"phase": "Running", "containerStatuses": [cs({"terminated": {"exitCode": 137, "signal": 9}})]}),
         "Signal:9"),
        (pod({"phase": "Pending", "initContainerStatuses": [cs({"running": {}}, name="i0")]}, init=1), "Init:0/1"),
        (pod({"phase": "Pending", "initContainerStatuses": [
            cs({"terminated": {"exitCode": 0, "reason": "Completed"}}, name="i0"),
            cs({"running": {}}, name="i1")]}, init=2), "Init:1/2"),
        (pod({"phase": "Pending", "initContainerStatuses": [cs({"waiting": {"reason": "CrashLoopBackOff"}},
                                                               name="i0")]}, init=1), "Init:CrashLoopBackOff"),
        (pod({"phase": "Pending", "initContainerStatuses": [cs({"terminated": {"exitCode": 2}}, name="i0")]},
             init=1), "Init:ExitCode:2"),
        (pod({"phase": "Running", "containerStatuses": [cs(RUNNING, ready=True)]}, deletionTimestamp=ago(seconds=3)),
         "Terminating"),
        (pod({"phase": "Succeeded"}, deletionTimestamp=ago(seconds=3)), "Succeeded"),
        (pod({"phase": "Running", "reason": "NodeLost"}, deletionTimestamp=ago(seconds=3)), "Unknown"),
        (pod({"phase": "Failed", "reason": "Evicted"}), "Evicted"),
        (pod({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                  "reason": "SchedulingGated"}]}), "SchedulingGated"),
    ],
)
def test_pod_status_column(obj, status):
    assert pod_status_reason(obj) == status


def test_pod_table_columns_and_row():
    obj = pod({"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}], "containerStatuses": [
        cs(RUNNING, ready=True, restarts=2, last={"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}})]})
    table = to_table("pods", [obj], "42", NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    assert names(table) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert wide(table) == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    [row] = table["rows"]
    assert row["cells"] == ["p", "1/1", "Running", "2 (5m ago)", "5m", "10.0.0.5", "edge-1", "<none>", "<none>"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}


def test_pod_without_restarts_or_ip_shows_defaults():
    obj = pod()
    obj["spec"].pop("nodeName")
    obj["spec"]["readinessGates"] = [{"conditionType": "x/ready"}]
    obj["status"]["conditions"] = [{"type": "x/ready", "status": "True"}]
    [row] = to_table("pods", [obj], "1", NOW)["rows"]
    assert row["cells"] == ["p", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "1/1"]


def test_completed_pod_rows_carry_the_completed_condition():
    [row] = to_table("pods", [pod({"phase": "Succeeded"})], "1", NOW)["rows"]
    assert row["conditions"][0]["type"] == "Completed"


def node(ready: str | None = "True", unschedulable: bool = False, labels: dict | None = None) -> dict:
    conditions = [{"type": "Ready", "status": ready}] if ready else []
    return {
        "metadata": {"name": "edge-1", "labels": labels or {}, "creationTimestamp": ago(days=2, hours=3)},
        "spec": {"unschedulable": unschedulable},
        "status": {"conditions": conditions, "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0-edgeworkers", "osImage": "Debian GNU/Linux 12",
                                "kernelVersion": "6.1.0", "containerRuntimeVersion": "docker://20.10.24"}},
    }


@pytest.mark.parametrize(
    ("obj", "status"),
    [(node(), "Ready"), (node("False"), "NotReady"), (node("Unknown"), "NotReady"), (node(None), "Unknown"),
     (node(unschedulable=True), "Ready,SchedulingDisabled")],
)
def test_node_status_column(obj, status):
    assert to_table("nodes", [obj], "1", NOW)["rows"][0]["cells"][1] == status


def test_node_table():
    table = to_table("nodes", [node(labels={"node-role.kubernetes.io/edge": "", "kubernetes.io/role": "agent"})],
                     "3", NOW)
    assert names(table) == ["Name", "Status", "Roles", "Age", "Version"]
    assert wide(table) == ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]
    assert table["rows"][0]["cells"] == ["edge-1", "Ready", "agent,edge", "2d3h", "v1.32.0-edgeworkers",
                                         "127.0.0.1", "<none>", "Debian GNU/Linux 12", "6.1.0", "docker://20.10.24"]


def test_node_roles_none():
    assert node_roles({"node-role.kubernetes.io/": "", "kubernetes.io/role": ""}) == "<none>"


def test_configmap_secret_namespace_lease_tables():
    meta = {"name": "x", "creationTimestamp": ago(seconds=30)}
    cm = to_table("configmaps", [{"metadata": meta, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}], "1", NOW)
    assert names(cm) == ["Name", "Data", "Age"] and cm["rows"][0]["cells"] == ["x", 2, "30s"]
    secret = to_table("secrets", [{"metadata": meta, "type": "Opaque", "data": {"a": "MQ=="}}], "1", NOW)
    assert names(secret) == ["Name", "Type", "Data", "Age"]
    assert secret["rows"][0]["cells"] == ["x", "Opaque", 1, "30s"]
    ns = to_table("namespaces", [{"metadata": meta, "status": {"phase": "Active"}}], "1", NOW)
    assert names(ns) == ["Name", "Status", "Age"] and ns["rows"][0]["cells"] == ["x", "Active", "30s"]
    lease = to_table("leases", [{"metadata": meta, "spec": {"holderIdentity": "edge-1"}}], "1", NOW)
    assert names(lease) == ["Name", "Holder", "Age"] and lease["rows"][0]["cells"] == ["x", "edge-1", "30s"]


def test_event_table():
    event = {
        "metadata": {"name": "p.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
        "reason": "Started", "message": "Started container a\n", "type": "Normal",
        "source": {"component": "kubelet", "host": "edge-1"},
        "firstTimestamp": ago(minutes=3), "lastTimestamp": ago(seconds=10), "count": 3,
    }
    table = to_table("events", [event], "9", NOW)
    assert names(table) == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert wide(table) == ["Subobject", "Source", "First Seen", "Count", "Name"]
    assert table["rows"][0]["cells"] == ["10s", "Normal", "Started", "pod/p", "spec.containers{a}",
                                         "kubelet, edge-1", "Started container a", "3m", 3, "p.17a"]


def test_missing_creation_timestamp_is_unknown_and_naive_now_is_utc():
    [row] = to_table("configmaps", [{"metadata": {"name": "x"}}], "1", NOW.replace(tzinfo=None))["rows"]
    assert row["cells"] == ["x", 0, "<unknown>"]


def test_an_empty_list_still_has_columns_and_resource_version():
    table = to_table("pods", [], "5", NOW)
    assert table["rows"] == [] and table["metadata"]["resourceVersion"] == "5" and names(table)


def test_a_kind_without_printer_columns_gets_the_default_table():
    table = to_table("widgets", [{"metadata": {"name": "w", "creationTimestamp": "2024-01-01T00:00:00Z"}}], "1", NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["w", "2024-01-01T00:00:00Z"]


def test_replicaset_and_replicationcontroller_tables():
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox:1.28"}]}}
    meta = {"name": "web", "creationTimestamp": ago(minutes=2)}
    rs = {"metadata": meta, "status": {"replicas": 3, "readyReplicas": 2},
          "spec": {"replicas": 3, "template": template, "selector": {
              "matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In",
                                                                   "values": ["front", "edge"]}]}}}
    table = to_table("replicasets", [rs], "1", NOW)
    assert names(table) == ["Name", "Desired", "Current", "Ready", "Age"]
    assert wide(table) == ["Containers", "Images", "Selector"]
    assert table["rows"][0]["cells"] == ["web", 3, 3, 2, "2m", "a,b", "busybox,busybox:1.28",
                                         "app=web,tier in (edge,front)"]
    rc = {"metadata": meta, "status": {"replicas": 1}, "spec": {"replicas": 0, "template": template,
                                                               "selector": {"tier": "x", "app": "web"}}}
    table = to_table("replicationcontrollers", [rc], "1", NOW)
    assert names(table) == ["Name", "Desired", "Current", "Ready", "Age"]
    assert table["rows"][0]["cells"] == ["web", 0, 1, 0, "2m", "a,b", "busybox,busybox:1.28", "app=web,tier=x"]
