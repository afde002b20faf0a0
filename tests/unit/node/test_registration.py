"""Registration and heartbeat against an in-memory API: create or adopt, status patches, lease renewal, outages."""
from __future__ import annotations

import copy
import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edgeworkers.kubeclient import ApiError, CloudUnavailable
from edgeworkers.node.registration import EVENTS, LEASES, NODES, NodeRegistrar, retry_delay
from edgeworkers.node.status import NodeFacts
from tests.unit.clock import Clock

NOW = datetime(2026, 11, 26, 14, 0, 0, tzinfo=UTC)


class FakeApi:
    """Nodes and leases by path, with resourceVersions, 404/409 like the API server, and an off switch."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.down = False
        self._versions = itertools.count(1)

    def _enter(self, method: str, path: str) -> None:
        self.calls.append((method, path))
        if self.down:
            raise CloudUnavailable(f"{method} {path}: connection refused")

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[self._path_of(obj)] = obj
        return copy.deepcopy(obj)

    @staticmethod
    def _path_of(obj: dict[str, Any]) -> str:
        base = {"Node": NODES, "Lease": LEASES, "Event": EVENTS}[obj["kind"]]
        return f"{base}/{obj['metadata']['name']}"

    def events(self) -> list[str]:
        return [obj["reason"] for path, obj in self.objects.items() if path.startswith(EVENTS)]

    def _existing(self, path: str) -> dict[str, Any]:
        if path not in self.objects:
            raise ApiError(404, "NotFound", f"{path} not found")
        return self.objects[path]

    def get(self, path: str) -> dict[str, Any]:
        self._enter("GET", path)
        return copy.deepcopy(self._existing(path))

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._enter("POST", path)
        obj = copy.deepcopy(body)
        if self._path_of(obj) in self.objects:
            raise ApiError(409, "AlreadyExists", "already exists")
        obj["metadata"]["uid"] = f"uid-{obj['metadata']['name']}"
        obj.pop("status", None)  # like the API server: status only through /status
        return self._stamp(obj)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._enter("PUT", path)
        current = self._existing(path)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._stamp(copy.deepcopy(body))

    def patch(self, path: str, body: dict[str, Any], content_type: str = "") -> dict[str, Any]:
        self._enter("PATCH", path)
        if path.endswith("/status"):
            current = copy.deepcopy(self._existing(path.removesuffix("/status")))
            current["status"] = body["status"]
        else:
            current = copy.deepcopy(self._existing(path))
            current["metadata"]["labels"] = {**current["metadata"].get("labels", {}), **body["metadata"]["labels"]}
        return self._stamp(current)


def facts(pressure: frozenset[str] = frozenset()) -> NodeFacts:
    return NodeFacts(
        name="edge-1", hostname="box", internal_ip="127.0.0.1", kubelet_port=10350, cpu_count=2,
        memory_total_bytes=8 << 30, disk_total_bytes=100 << 30, pressure=pressure,
        kernel_version="6.1",
        os_image="Debian", architecture="amd64", container_runtime_version="docker://20.10.24",
    )


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def registrar(api: FakeApi, clock: Clock) -> NodeRegistrar:
    return NodeRegistrar(api, facts, clock)  # type: ignore[arg-type]


def test_first_sync_creates_node_status_and_lease(api: FakeApi, registrar: NodeRegistrar) -> None:
    registrar.sync()
    node = api.objects[f"{NODES}/edge-1"]
    assert node["metadata"]["labels"]["node-role.kubernetes.io/edge"] == ""
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10350}}
    lease = api.objects[f"{LEASES}/edge-1"]
    assert lease["spec"] == {
        "holderIdentity": "edge-1", "leaseDurationSeconds": 40, "renewTime": "2026-11-26T14:00:00.000000Z"}
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "edge-1", "uid": "uid-edge-1"}]
    assert registrar.last_success == NOW


def test_heartbeat_patches_status_and_renews_lease(api: FakeApi, registrar: NodeRegistrar, clock: Clock) -> None:
    registrar.sync()
    clock.now += timedelta(seconds=10)
    api.calls.clear()
    registrar.sync()
    assert api.calls == [("PATCH", f"{NODES}/edge-1/status"), ("PUT", f"{LEASES}/edge-1")]
    ready = next(c for c in api.objects[f"{NODES}/edge-1"]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["lastHeartbeatTime"] == "2026-11-26T14:00:10Z"
    assert ready["lastTransitionTime"] == "2026-11-26T14:00:00Z"
    assert api.objects[f"{LEASES}/edge-1"]["spec"]["renewTime"] == "2026-11-26T14:00:10.000000Z"


def test_an_existing_node_is_adopted(api: FakeApi, registrar: NodeRegistrar) -> None:
    api.objects[f"{NODES}/edge-1"] = {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": "edge-1", "uid": "old-uid", "resourceVersion": "0", "labels": {"team": "a"}},
    }
    registrar.sync()
    node = api.objects[f"{NODES}/edge-1"]
    assert node["metadata"]["uid"] == "old-uid"
    assert node["metadata"]["labels"]["team"] == "a"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-edgeworkers"


def test_a_lease_changed_elsewhere_is_read_again(api: FakeApi, registrar: NodeRegistrar, clock: Clock) -> None:
    registrar.sync()
    api.objects[f"{LEASES}/edge-1"]["metadata"]["resourceVersion"] = "999"
    clock.now += timedelta(seconds=10)
    registrar.sync()
    assert api.objects[f"{LEASES}/edge-1"]["spec"]["renewTime"] == "2026-11-26T14:00:10.000000Z"


def test_a_deleted_node_is_registered_again(api: FakeApi, registrar: NodeRegistrar) -> None:
    registrar.sync()
    del api.objects[f"{NODES}/edge-1"]
    del api.objects[f"{LEASES}/edge-1"]
    registrar.sync()
    assert f"{NODES}/edge-1" in api.objects and "status" in api.objects[f"{NODES}/edge-1"]
    assert f"{LEASES}/edge-1" in api.objects


def test_run_survives_the_cloud_being_down(api: FakeApi, clock: Clock) -> None:
    registrar = NodeRegistrar(api, facts, clock, interval_s=0.01)  # type: ignore[arg-type]
    api.down = True
    stop = threading.Event()
    thread = threading.Thread(target=registrar.run, args=(stop,), daemon=True)
    thread.start()
    deadline = datetime.now() + timedelta(seconds=5)
    while len(api.calls) < 3 and datetime.now() < deadline:
        stop.wait(0.01)
    assert thread.is_alive() and not registrar.registered
    api.down = False
    while registrar.last_success is None and datetime.now() < deadline:
        stop.wait(0.01)
    stop.set()
    thread.join(timeout=5)
    assert registrar.registered
    assert f"{LEASES}/edge-1" in api.objects


def test_condition_changes_are_recorded_as_events(api: FakeApi, clock: Clock) -> None:
    current: dict[str, frozenset[str]] = {"pressure": frozenset()}
    registrar = NodeRegistrar(api, lambda: facts(current["pressure"]), clock)  # type: ignore[arg-type]
    registrar.sync()
    assert api.events() == ["NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"]
    event = next(obj for path, obj in api.objects.items() if path.startswith(EVENTS))
    assert event["involvedObject"] == {"kind": "Node", "name": "edge-1", "uid": "edge-1"}
    assert event["source"] == {"component": "kubelet", "host": "edge-1"}

    clock.now += timedelta(seconds=10)
    current["pressure"] = frozenset({"MemoryPressure"})
    registrar.sync()
    assert api.events()[4:] == ["NodeHasInsufficientMemory"]


def test_a_lost_event_does_not_fail_the_heartbeat(api: FakeApi, registrar: NodeRegistrar) -> None:
    original_post = api.post

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == EVENTS:
            raise ApiError(403, "Forbidden", "events are not allowed")
        return original_post(path, body)

    api.post = post  # type: ignore[method-assign]
    registrar.sync()
    assert registrar.last_success == NOW
    assert api.events() == []


@pytest.mark.parametrize(("failures", "delay"), [(0, 10.0), (1, 0.2), (2, 0.4), (4, 1.6), (6, 6.4), (7, 10.0), (30, 10.0)])
def test_a_failed_heartbeat_is_retried_sooner_doubling_up_to_the_interval(failures: int, delay: float) -> None:
    assert retry_delay(failures, 10.0) == pytest.approx(delay)
