"""DockerRuntime's inspect cache is pruned by per-pod lists too (not only node-wide ones), and bounded in time:
a stand-in for the SDK's APIClient, no engine needed."""
from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from edgeworkers.runtime import docker as docker_runtime
from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.errors import ContainerRuntimeError, RuntimeFault, RuntimeUnavailable
from edgeworkers.runtime.types import PodRef


class FakeAPI:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.inspects = 0

    def add(self, ident: str, pod: str) -> None:
        self.entries.append({
            "Id": ident, "State": "exited", "Image": "busybox", "ImageID": "sha256:b", "Created": 0,
            "Labels": labels.for_container("node", PodRef(f"uid-{pod}", "default", pod), "app", labels.TYPE_APP),
        })  # fmt: skip

    def _url(self, path: str) -> str:
        return path

    def _get(self, url: str, params: dict[str, Any]) -> SimpleNamespace:  # the container list, as the engine sends it
        assert url == "/containers/json" and params["all"] == 1
        wanted = [f for f in json.loads(params["filters"])["label"] if "=" in f and not f.startswith(labels.NODE)]
        return SimpleNamespace(content=json.dumps([e for e in self.entries if all_match(e, wanted)]).encode())

    def _raise_for_status(self, response: SimpleNamespace) -> None:
        pass

    def inspect_container(self, ident: str) -> dict[str, Any]:
        self.inspects += 1
        return {"Created": "2026-01-01T00:00:00Z", "State": {"Status": "exited", "ExitCode": 1,
                "StartedAt": "2026-01-01T00:00:01Z", "FinishedAt": "2026-01-01T00:00:02Z"}}  # fmt: skip


def all_match(entry: dict[str, Any], wanted: list[str]) -> bool:
    return all(entry["Labels"].get(k) == v for k, v in (f.split("=", 1) for f in wanted))


@pytest.fixture
def runtime() -> tuple[DockerRuntime, FakeAPI]:
    runtime = DockerRuntime("node")
    api = FakeAPI()
    runtime._client = api
    return runtime, api


def test_an_unchanged_container_is_inspected_once(runtime) -> None:
    rt, api = runtime
    api.add("a", "web")
    rt.list_containers("default/web")
    rt.list_containers("default/web")
    rt.list_containers()
    assert api.inspects == 1


def test_a_per_pod_list_prunes_that_pods_containers_removed_elsewhere(runtime) -> None:
    rt, api = runtime
    api.add("a", "web")
    api.add("b", "db")
    rt.list_containers("default/web")
    rt.list_containers("default/db")
    api.entries = [e for e in api.entries if e["Id"] != "a"]  # removed by another process (GC)
    rt.list_containers("default/web")
    assert {key[0] for key in rt._details} == {"b"}


def test_entries_no_list_has_shown_for_long_are_dropped(runtime, monkeypatch) -> None:
    rt, api = runtime
    api.add("a", "web")
    api.add("b", "db")
    rt.list_containers("default/web")
    rt.list_containers("default/db")
    api.entries = [e for e in api.entries if e["Id"] != "a"]
    now = docker_runtime.time.monotonic()
    monkeypatch.setattr(docker_runtime.time, "monotonic", lambda: now + docker_runtime.STALE_S + 1)
    rt.list_containers("default/db")  # never lists "web" again
    assert {key[0] for key in rt._details} == {"b"}


def test_an_unreachable_engine_is_no_container_error() -> None:
    assert not issubclass(RuntimeUnavailable, ContainerRuntimeError)  # no `except RuntimeUnavailable: raise` needed
    assert issubclass(RuntimeUnavailable, RuntimeFault) and issubclass(ContainerRuntimeError, RuntimeFault)
