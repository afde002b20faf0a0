"""Events: kubelet's shape, correlated as client-go does (a repeat raises count, 25 per object then one every 5
minutes), the state shared by every recorder of the node through Redis, through the outbox to the uplink, which
creates the event or, for a repeat, patches its count."""
from __future__ import annotations

from typing import Any

import fakeredis

from edgeworkers.bridge.uplink import Uplink
from edgeworkers.events.recorder import EventRecorder
from edgeworkers.k8s.pod import Pod
from edgeworkers.kubeclient import MERGE_PATCH, ApiError
from edgeworkers.metamanager.outbox import Outbox
from tests.unit.clock import Clock

POD = Pod.model_validate({"metadata": {"name": "web", "namespace": "team", "uid": "u1"},
                          "spec": {"containers": [{"name": "app", "image": "busybox"}]}})  # fmt: skip


def test_a_repeat_is_the_same_event_with_a_higher_count_and_replaces_the_pending_one() -> None:
    client, clock = fakeredis.FakeRedis(), Clock(1_700_000_000.0)
    record = EventRecorder(client, "node-a", clock)
    record(POD, "Unhealthy", "Liveness probe failed: no such file", "Warning")
    clock.now += 10
    record(POD, "Unhealthy", "Liveness probe failed: no such file", "Warning")
    record(POD, "Killing", "Container app failed liveness probe, will be restarted")
    items = Outbox(client).peek()
    assert [i.payload["event"]["reason"] for i in items] == ["Unhealthy", "Killing"]
    unhealthy = items[0].payload["event"]
    assert unhealthy["count"] == 2
    assert (unhealthy["firstTimestamp"], unhealthy["lastTimestamp"]) == ("2023-11-14T22:13:20Z", "2023-11-14T22:13:30Z")
    assert unhealthy["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "namespace": "team", "name": "web",
                                           "uid": "u1"}  # fmt: skip
    assert unhealthy["type"] == "Warning" and unhealthy["source"] == {"component": "kubelet", "host": "node-a"}
    assert unhealthy["metadata"]["name"].startswith("web.") and unhealthy["metadata"]["namespace"] == "team"


def test_a_redis_failure_drops_the_event_quietly() -> None:
    class Down(fakeredis.FakeRedis):
        def pipeline(self, *args, **kwargs):
            import redis

            raise redis.ConnectionError("away")

    EventRecorder(Down(), "node-a")(POD, "Killing", "x")  # no exception


class RecordingApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.names: set[str] = set()

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("POST", path, body))
        if body["metadata"]["name"] in self.names:
            raise ApiError(409, "AlreadyExists", "exists")
        self.names.add(body["metadata"]["name"])
        return body

    def fail_patch_once(self, code: int) -> None:
        self.patch_error = ApiError(code, "NotFound", "gone")

    def patch(self, path: str, body: dict[str, Any], content_type: str = "") -> dict[str, Any]:
        self.calls.append(("PATCH", path, (body, content_type)))
        error, self.patch_error = getattr(self, "patch_error", None), None
        if error is not None:
            raise error
        return body


def test_the_uplink_creates_an_event_then_patches_its_count() -> None:
    client = fakeredis.FakeRedis()
    api = RecordingApi()
    uplink = Uplink(api, Outbox(client), mirrors=None, jitter=lambda: 0.5)
    record = EventRecorder(client, "node-a")
    record(POD, "Killing", "Container app failed liveness probe, will be restarted")
    uplink.drain()
    record(POD, "Killing", "Container app failed liveness probe, will be restarted")
    uplink.drain()
    (method1, path1, body1), (method2, path2, (patch, kind)) = api.calls
    assert (method1, path1) == ("POST", "/api/v1/namespaces/team/events") and body1["count"] == 1
    assert (method2, path2) == ("PATCH", f"/api/v1/namespaces/team/events/{body1['metadata']['name']}")
    assert patch["count"] == 2 and set(patch) == {"count", "lastTimestamp", "message"} and kind == MERGE_PATCH
    assert len(Outbox(client)) == 0


def test_a_repeat_the_cloud_no_longer_has_is_created_again() -> None:
    client, api = fakeredis.FakeRedis(), RecordingApi()
    record = EventRecorder(client, "node-a")
    record(POD, "Killing", "Stopping container app")
    record(POD, "Killing", "Stopping container app")  # both while the cloud was away: only count 2 is pending
    api.fail_patch_once(404)
    Uplink(api, Outbox(client), mirrors=None).drain()
    assert [(method, body["count"] if method == "POST" else body[0]["count"]) for method, _, body in api.calls] == [
        ("PATCH", 2), ("POST", 2)]


def test_a_failing_probe_makes_one_event_with_a_growing_count_not_hundreds() -> None:
    client, clock = fakeredis.FakeRedis(), Clock(1_700_000_000.0)
    record = EventRecorder(client, "node-a", clock)
    api = RecordingApi()
    uplink = Uplink(api, Outbox(client), mirrors=None)
    for _ in range(360):  # an hour of a liveness probe failing every 10 s
        record(POD, "Unhealthy", "Liveness probe failed: exit 1", "Warning", "spec.containers{app}")
        uplink.drain()
        clock.advance(10)
    assert [method for method, _, _ in api.calls].count("POST") == 1
    # 25 at once, then one every 5 minutes: 25 + (3600 - 250) / 300 sends, each with the count so far
    assert len(api.calls) == 25 + 11
    counts = [body["count"] if method == "POST" else body[0]["count"] for method, _, body in api.calls]
    assert counts[:25] == list(range(1, 26)) and counts == sorted(counts) and counts[-1] > 320
    assert api.calls[-1][2][0]["message"] == "Liveness probe failed: exit 1"


def test_every_recorder_of_the_node_shares_the_count_and_the_bucket() -> None:
    client, clock = fakeredis.FakeRedis(), Clock(1_700_000_000.0)
    worker, prober = EventRecorder(client, "node-a", clock), EventRecorder(client, "node-a", clock)
    worker(POD, "Killing", "Stopping container app")
    prober(POD, "Killing", "Stopping container app")
    [item] = Outbox(client).peek()
    assert item.payload["event"]["count"] == 2
    for _ in range(30):
        worker(POD, "Started", "Started container app")
        prober(POD, "Unhealthy", "Readiness probe failed", "Warning")
    events = [i.payload["event"] for i in Outbox(client).peek()]
    assert sum(e["count"] for e in events) == 25  # the object's burst, whichever process recorded


def test_a_node_event_names_the_node() -> None:
    client = fakeredis.FakeRedis()
    EventRecorder(client, "node-a", Clock(1_700_000_000.0)).node("FreeDiskSpaceFailed", "Failed to garbage collect")
    (item,) = Outbox(client).peek()
    event = item.payload["event"]
    assert event["involvedObject"] == {"kind": "Node", "name": "node-a", "uid": "node-a"}
    assert (event["type"], event["reason"], event["metadata"]["namespace"]) == ("Warning", "FreeDiskSpaceFailed",
                                                                                 "default")  # fmt: skip
