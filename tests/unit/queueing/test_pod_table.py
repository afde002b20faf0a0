"""kubectl's pod columns, from tables."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edgeworkers.pods.cli import display_status, human_duration, pod_row, read_manifests, render


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-0.5, "0s"),
        (-5, "<invalid>"),
        (119, "119s"),
        (150, "2m30s"),
        (180, "3m"),
        (60 * 45, "45m"),
        (3600 * 5 + 60 * 7, "5h7m"),
        (3600 * 5, "5h"),
        (3600 * 30, "30h"),
        (86400 * 3 + 3600 * 4, "3d4h"),
        (86400 * 30, "30d"),
        (86400 * 365 * 3, "3y"),
        (86400 * (365 * 3 + 10), "3y10d"),
        (86400 * 365 * 9, "9y"),
    ],
)
def test_human_duration_matches_apimachinery(seconds, text):
    assert human_duration(seconds) == text


def running(ready=True, restarts=0):
    return {"ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}


def waiting(reason):
    return {"ready": False, "restartCount": 0, "state": {"waiting": {"reason": reason}}}


def terminated(code, reason=""):
    state = {"exitCode": code, **({"reason": reason} if reason else {})}
    return {"ready": False, "restartCount": 0, "state": {"terminated": state}}


POD = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]}}


@pytest.mark.parametrize(
    ("status", "shown"),
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
def test_display_status_as_kubectl_prints_it(status, shown):
    assert display_status(POD, status) == shown


def test_a_deleted_pod_shows_terminating():
    pod = {**POD, "metadata": {"name": "web", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert display_status(pod, {"phase": "Running", "containerStatuses": [running()]}) == "Terminating"


def test_pod_row_counts_ready_containers_restarts_and_age():
    pod = {
        "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    }
    status = {"phase": "Running", "containerStatuses": [running(restarts=2), running(ready=False, restarts=1)]}
    now = datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC)
    assert pod_row(pod, status, now) == ("web", "1/2", "Running", "3", "2m30s")
    assert pod_row(pod, None, now)[1:3] == ("0/2", "Pending")


def test_render_pads_columns_like_kubectl():
    assert render([("web", "1/1", "Running", "0", "5s")]).splitlines() == [
        "NAME   READY   STATUS    RESTARTS   AGE",
        "web    1/1     Running   0          5s",
    ]


def test_read_manifests_takes_several_documents_and_lists():
    text = "a: 1\n---\n---\nkind: List\nitems:\n- b: 2\n- c: 3\n"
    assert read_manifests(text) == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert read_manifests('{"kind": "Pod", "metadata": {"name": "x"}}') == [{"kind": "Pod", "metadata": {"name": "x"}}]
