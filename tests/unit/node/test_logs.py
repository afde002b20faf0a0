"""Log request options and the choice of container instance, from tables."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgeworkers.node.logs import (
    LogOptions,
    LogRequestError,
    parse_log_options,
    select_container,
)
from edgeworkers.runtime.types import Container, ContainerID, ContainerState, PodRef

NOW = datetime(2026, 11, 26, 14, 0, 0, tzinfo=UTC)
POD = PodRef("uid-1", "default", "web")


@pytest.mark.parametrize(("query", "expected"), [
    ({}, LogOptions()),
    ({"follow": "true", "timestamps": "1", "previous": "false"}, LogOptions(follow=True, timestamps=True)),
    ({"tailLines": "0"}, LogOptions(tail_lines=0)),
    ({"tailLines": "20", "limitBytes": "100"}, LogOptions(tail_lines=20, limit_bytes=100)),
    ({"sinceSeconds": "30"}, LogOptions(since=NOW - timedelta(seconds=30))),
    ({"sinceTime": "2026-11-26T13:00:00Z"}, LogOptions(since=datetime(2026, 11, 26, 13, tzinfo=UTC))),
])
def test_parse_log_options(query: dict[str, str], expected: LogOptions) -> None:
    assert parse_log_options(query, NOW) == expected


@pytest.mark.parametrize(("query", "message"), [
    ({"tailLines": "-1"}, "tailLines: Invalid value: '-1': must be greater than or equal to 0"),
    ({"tailLines": "x"}, "tailLines: Invalid value: 'x': must be greater than or equal to 0"),
    ({"sinceSeconds": "0"}, "sinceSeconds: Invalid value: '0': must be greater than 0"),
    ({"follow": "maybe"}, "follow: Invalid value: 'maybe': must be true or false"),
    ({"sinceSeconds": "1", "sinceTime": "2026-11-26T13:00:00Z"}, "at most one of sinceTime or sinceSeconds"),
])
def test_invalid_log_options_are_400(query: dict[str, str], message: str) -> None:
    with pytest.raises(LogRequestError) as err:
        parse_log_options(query, NOW)
    assert err.value.code == 400
    assert err.value.message.startswith(message)


def container(name: str, restarts: int, age_s: int, state: ContainerState = ContainerState.EXITED,
              pod: PodRef = POD, sandbox: bool = False) -> Container:
    return Container(
        id=ContainerID("docker", f"{pod.uid}-{name}-{restarts}"), pod=pod, name=name, image="busybox",
        image_id="sha256:1", state=state, restart_count=restarts, is_sandbox=sandbox,
        created_at=NOW - timedelta(seconds=age_s),
    )


CONTAINERS = [
    container("POD", 0, 100, ContainerState.RUNNING, sandbox=True),
    container("app", 0, 90),
    container("app", 1, 50),
    container("app", 2, 10, ContainerState.RUNNING),
    container("side", 0, 90, ContainerState.RUNNING),
    container("app", 0, 5, ContainerState.RUNNING, pod=PodRef("uid-2", "other", "web")),
]


@pytest.mark.parametrize(("namespace", "name", "previous", "expected"), [
    ("default", "app", False, "uid-1-app-2"),
    ("default", "app", True, "uid-1-app-1"),
    ("default", "side", False, "uid-1-side-0"),
    ("other", "app", False, "uid-2-app-0"),
])
def test_select_container_picks_the_newest_or_the_one_before(
    namespace: str, name: str, previous: bool, expected: str
) -> None:
    assert select_container(CONTAINERS, namespace, "web", name, previous).id.id == expected


@pytest.mark.parametrize(("name", "previous", "code", "message"), [
    ("nope", False, 404, 'container "nope" in pod "web" is not available'),
    ("POD", False, 404, 'container "POD" in pod "web" is not available'),
    ("side", True, 400, 'previous terminated container "side" in pod "web" not found'),
])
def test_select_container_errors_read_as_kubelets(name: str, previous: bool, code: int, message: str) -> None:
    with pytest.raises(LogRequestError) as err:
        select_container(CONTAINERS, "default", "web", name, previous)
    assert (err.value.code, err.value.message) == (code, message)
