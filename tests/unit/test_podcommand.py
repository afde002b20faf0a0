"""kubectl's pod columns, from tables."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from edgeworkers.podcommand import ManifestError, pod_row, read_manifests, render


def running(ready=True, restarts=0):
    return {"ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}


def waiting(reason):
    return {"ready": False, "restartCount": 0, "state": {"waiting": {"reason": reason}}}


def terminated(code, reason=""):
    state = {"exitCode": code, **({"reason": reason} if reason else {})}
    return {"ready": False, "restartCount": 0, "state": {"terminated": state}}


POD = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]}}
NOW = datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC)


def shown(pod: dict, status: dict) -> str:
    return pod_row(pod, status, NOW)[2]


@pytest.mark.parametrize(
    ("status", "column"),
    [
        ({}, "Pending"),
        ({"phase": "Running", "containerStatuses": [running()]}, "Running"),
        ({"phase": "Pending", "containerStatuses": [waiting("ContainerCreating")]}, "ContainerCreating"),
        ({"phase": "Running", "containerStatuses": [waiting("CrashLoopBackOff")]}, "CrashLoopBackOff"),
        ({"phase": "Pending", "containerStatuses": [waiting("ErrImageNeverPull")]}, "ErrImageNeverPull"),
        ({"phase": "Succeeded", "containerStatuses": [terminated(0, "Completed")]}, "Completed"),
        ({"phase": "Failed", "containerStatuses": [terminated(3)]}, "ExitCode:3"),
        ({"phase": "Failed", "reason": "Invalid"}, "Invalid"),
        ({"phase": "Pending", "initContainerStatuses": [running(ready=False)]}, "Init:0/1"),
        ({"phase": "Pending", "initContainerStatuses": [terminated(1, "Error")]}, "Init:Error"),
        ({"phase": "Pending", "initContainerStatuses": [waiting("CrashLoopBackOff")]}, "Init:CrashLoopBackOff"),
        (
            {"phase": "Running", "initContainerStatuses": [terminated(0, "Completed")], "containerStatuses": [running()]},
            "Running",
        ),
    ],
)
def test_the_status_column_as_kubectl_prints_it(status, column):
    assert shown(POD, status) == column


def test_a_deleted_pod_shows_terminating_until_it_is_done():
    pod = {**POD, "metadata": {"name": "web", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert shown(pod, {"phase": "Running", "containerStatuses": [running()]}) == "Terminating"
    assert shown(pod, {"phase": "Succeeded", "containerStatuses": [terminated(0, "Completed")]}) == "Completed"


def test_pod_row_counts_ready_containers_restarts_and_age():
    pod = {
        "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    }
    status = {"phase": "Running", "containerStatuses": [running(restarts=2), running(ready=False, restarts=1)]}
    assert pod_row(pod, status, NOW) == ("web", "1/2", "Running", "3", "2m30s")
    assert pod_row(pod, None, NOW)[1:3] == ("0/2", "Pending")


def test_restarts_show_how_long_ago_the_last_one_was_as_kubectl_shows_them():
    pod = {"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"containers": [{"name": "a"}]}}
    restarted = {**running(restarts=2), "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:02:00Z"}}}
    assert pod_row(pod, {"phase": "Running", "containerStatuses": [restarted]}, NOW)[3] == "2 (30s ago)"


def test_render_pads_columns_like_kubectl():
    assert render([("web", "1/1", "Running", "0", "5s")]).splitlines() == [
        "NAME   READY   STATUS    RESTARTS   AGE",
        "web    1/1     Running   0          5s",
    ]


def test_read_manifests_takes_several_documents_and_lists():
    text = "a: 1\n---\n---\nkind: List\nitems:\n- b: 2\n- c: 3\n"
    assert read_manifests(text) == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert read_manifests('{"kind": "Pod", "metadata": {"name": "x"}}') == [{"kind": "Pod", "metadata": {"name": "x"}}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata: {name: x\nspec: [\n", "error converting YAML to JSON: yaml: line 2, column 5: expected ',' or '}'"),
        ("- a\n- b\n", "a manifest must hold YAML or JSON objects"),
        ("kind: List\nitems: [5]\n", "a manifest must hold YAML or JSON objects"),
    ],
)
def test_read_manifests_refuses_what_is_not_yaml_objects_with_the_place(text, message):
    with pytest.raises(ManifestError, match="^" + re.escape(message)):
        read_manifests(text)
