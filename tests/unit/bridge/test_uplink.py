"""The uplink: the outbox reaches the cloud in order, nothing lost across outages, poison items dropped."""
from __future__ import annotations

import pytest
import redis
from structlog.testing import capture_logs

from edgeworkers.bridge.mirror import MirrorPods, mirror_pod
from edgeworkers.bridge.uplink import BACKOFF_MAX_S, POLL_INTERVAL_S, Uplink, backoff_delay
from edgeworkers.constants import ANNOTATION_MIRROR
from edgeworkers.kubeclient import MERGE_PATCH, ApiError, CloudUnavailable
from edgeworkers.metamanager.store import POD
from tests.unit.bridge.fakecloud import NODE, FakeApi, FakeStop, pod_path, static_pod

SECRET_TEXT = "password=hunter2"


def running(message: str = "") -> dict:
    status = {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [{"name": "web", "ready": True}]}
    return {**status, "message": message} if message else status


@pytest.fixture
def mirrors(api, store, status) -> MirrorPods:
    return MirrorPods(api, store, status, NODE)


@pytest.fixture
def uplink(api, outbox, mirrors) -> Uplink:
    return Uplink(api, outbox, mirrors, jitter=lambda: 0.5)


def cloud_pod(api: FakeApi, name: str, status: dict | None = None) -> str:
    """A pod bound to the node at the cloud; returns its uid."""
    pod = {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": NODE, "containers": []},
           "status": status or {"phase": "Pending", "message": "waiting for the node"}}
    return api.add(pod_path("default", name), pod)["metadata"]["uid"]


def status_of(api: FakeApi, name: str) -> dict:
    return api.objects[pod_path("default", name)]["status"]


# --- pod status ----------------------------------------------------------------------------------


def test_a_status_is_patched_with_the_pods_uid_and_replaces_the_clouds(api, outbox, uplink):
    uid = cloud_pod(api, "web")
    outbox.pod_status("default", "web", uid, running(), mirror=False)

    assert uplink.drain() == 1

    [patch] = api.calls
    assert (patch.method, patch.path, patch.content_type) == ("PATCH", pod_path("default", "web") + "/status",
                                                              MERGE_PATCH)
    assert patch.body["metadata"] == {"uid": uid}
    assert status_of(api, "web") == running()  # the cloud's stale "message" is gone
    assert len(outbox) == 0


def test_order_is_kept_across_an_outage_and_nothing_is_lost(api, outbox, uplink):
    uids = {name: cloud_pod(api, name) for name in ("a", "b", "c")}
    for name in ("a", "b", "c"):
        outbox.pod_status("default", name, uids[name], running(f"{name} 1"), mirror=False)
    api.down = True

    with pytest.raises(CloudUnavailable):
        uplink.drain()
    with pytest.raises(CloudUnavailable):
        uplink.drain()
    assert len(outbox) == 3

    outbox.pod_status("default", "a", uids["a"], running("a 2"), mirror=False)  # newer, while away: it wins
    api.down = False
    api.calls.clear()
    assert uplink.drain() == 3

    assert [call.path.split("/")[-2] for call in api.calls] == ["b", "c", "a"]
    assert [status_of(api, name)["message"] for name in ("a", "b", "c")] == ["a 2", "b 1", "c 1"]
    assert len(outbox) == 0


def test_after_an_outage_a_status_reaches_the_cloud_before_the_events_queued_meanwhile(api, outbox, uplink):
    uid = cloud_pod(api, "web")
    api.down = True
    for i in range(300):  # a long outage's events, then a status change
        outbox.event("default", {"metadata": {"name": f"web.{i:x}", "namespace": "default"}, "count": 1})
    outbox.pod_status("default", "web", uid, running(), mirror=False)
    with pytest.raises(CloudUnavailable):
        uplink.drain()

    api.down = False
    api.calls.clear()
    assert uplink.drain() == 301
    assert (api.calls[0].method, api.calls[0].path) == ("PATCH", pod_path("default", "web") + "/status")
    assert [call.method for call in api.calls[1:]] == ["POST"] * 300


def test_an_outage_in_the_middle_of_a_drain_keeps_the_item_and_those_after_it(api, outbox, uplink):
    uids = {name: cloud_pod(api, name) for name in ("a", "b", "c")}
    for name in ("a", "b", "c"):
        outbox.pod_status("default", name, uids[name], running(name), mirror=False)
    api.fail("PATCH", pod_path("default", "b") + "/status", CloudUnavailable("connection reset"))

    with pytest.raises(CloudUnavailable):
        uplink.drain()
    assert [item.payload["name"] for item in outbox.peek()] == ["b", "c"]

    assert uplink.drain() == 2
    assert all(status_of(api, name)["message"] == name for name in ("a", "b", "c"))


def test_gone_replaced_and_invalid_items_are_dropped_without_blocking_the_queue(api, outbox, uplink):
    cloud_pod(api, "replaced")  # re-created at the cloud: another uid than the node's
    good = cloud_pod(api, "good")
    invalid = cloud_pod(api, "invalid")
    outbox.pod_status("default", "gone", "uid-gone", running(), mirror=False)
    outbox.pod_status("default", "replaced", "uid-old", running(), mirror=False)
    outbox.pod_status("default", "invalid", invalid, running(SECRET_TEXT), mirror=False)
    outbox.pod_status("default", "good", good, running(), mirror=False)
    api.fail("PATCH", pod_path("default", "invalid") + "/status",
             ApiError(422, "Invalid", 'Pod "invalid" is invalid: status.phase: Unsupported value'))

    with capture_logs() as logs:
        assert uplink.drain() == 4

    assert len(outbox) == 0
    assert status_of(api, "good") == running()
    assert status_of(api, "replaced")["phase"] == "Pending"
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["pod"] == "default/invalid" and "Unsupported value" in warning["error"]
    assert {entry["pod"] for entry in logs if entry["log_level"] == "info"} == {"default/gone", "default/replaced"}
    assert SECRET_TEXT not in repr(logs)  # names, never a status


@pytest.mark.parametrize("code", [401, 429])
def test_a_refusal_for_now_keeps_the_item(api, outbox, uplink, code):
    uid = cloud_pod(api, "web")
    outbox.pod_status("default", "web", uid, running(), mirror=False)
    api.fail("PATCH", pod_path("default", "web") + "/status", ApiError(code, "TooManyRequests", "slow down"))
    with pytest.raises(CloudUnavailable):
        uplink.drain()
    assert len(outbox) == 1
    assert uplink.drain() == 1


def test_a_malformed_item_is_dropped_and_the_next_is_sent(api, outbox, uplink):
    uid = cloud_pod(api, "web")
    outbox.put("pod:default/broken", {"op": "pod_status", "namespace": "default", "name": "broken"})
    outbox.pod_status("default", "web", uid, running(), mirror=False)
    with capture_logs() as logs:
        assert uplink.drain() == 2
    assert status_of(api, "web") == running()
    assert [(entry["log_level"], entry["item"]) for entry in logs] == [("error", "pod:default/broken")]


def test_a_redis_failure_while_sending_keeps_the_item(api, store, outbox, mirrors, uplink, monkeypatch):
    store.put(POD, static_pod())
    outbox.pod_status("default", f"web-{NODE}", "static-uid", running(), mirror=True)

    def redis_down(namespace: str, name: str) -> None:
        raise redis.ConnectionError("Redis is loading")

    monkeypatch.setattr(mirrors, "ensure", redis_down)
    with pytest.raises(redis.ConnectionError):
        uplink.drain()
    assert len(outbox) == 1


# --- pod deleted ---------------------------------------------------------------------------------


def test_a_deletion_is_confirmed_with_grace_0_and_the_uid_precondition(api, outbox, uplink):
    uid = cloud_pod(api, "web")
    api.delete(pod_path("default", "web"), {})  # kubectl delete: waits for the node
    outbox.pod_deleted("default", "web", uid, mirror=False)

    assert uplink.drain() == 1

    [delete] = api.requests("DELETE")[1:]
    assert delete.body == {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
    assert pod_path("default", "web") not in api.objects


def test_a_deletion_never_removes_a_pod_recreated_under_the_same_name(api, outbox, uplink):
    cloud_pod(api, "web")
    outbox.pod_deleted("default", "web", "uid-of-the-old-pod", mirror=False)
    outbox.pod_deleted("default", "gone", "uid-gone", mirror=False)
    assert uplink.drain() == 2
    assert pod_path("default", "web") in api.objects
    assert len(outbox) == 0


# --- static pods, through their mirror pods ------------------------------------------------------


def test_a_static_pods_status_creates_its_missing_mirror_then_patches_it(api, store, outbox, uplink):
    name = f"web-{NODE}"
    store.put(POD, static_pod(name))
    outbox.pod_status("default", name, "static-uid", running(), mirror=True)

    assert uplink.drain() == 1

    mirror = api.objects[pod_path("default", name)]
    assert mirror["metadata"]["annotations"][ANNOTATION_MIRROR]
    assert mirror["status"] == running()
    patches = api.requests("PATCH")
    assert patches[0].body.get("metadata") is None  # no mirror known yet: no uid to name
    assert patches[1].body["metadata"] == {"uid": mirror["metadata"]["uid"]}  # the mirror's, not the static pod's


def test_a_status_for_a_static_pod_no_longer_stored_is_dropped(api, outbox, uplink):
    outbox.pod_status("default", f"web-{NODE}", "static-uid", running(), mirror=True)
    assert uplink.drain() == 1
    assert api.requests("POST") == []


def test_a_static_pods_end_deletes_its_known_mirror_with_the_mirrors_uid(api, store, outbox, mirrors, uplink):
    name = f"web-{NODE}"
    mirror = api.add(pod_path("default", name), mirror_pod(static_pod(name), NODE))
    mirrors.observe("ADDED", mirror)
    outbox.pod_deleted("default", name, "static-uid", mirror=True)

    assert uplink.drain() == 1

    [delete] = api.calls
    assert delete.body == {"gracePeriodSeconds": 0, "preconditions": {"uid": mirror["metadata"]["uid"]}}
    assert api.objects == {}


def test_a_static_pods_end_deletes_an_unknown_mirror_only_if_it_is_one(api, outbox, uplink):
    ours, theirs = f"web-{NODE}", f"db-{NODE}"
    mirror = api.add(pod_path("default", ours), mirror_pod(static_pod(ours), NODE))
    cloud_pod(api, theirs)
    outbox.pod_deleted("default", ours, "static-uid", mirror=True)
    outbox.pod_deleted("default", theirs, "static-uid", mirror=True)

    assert uplink.drain() == 2

    [delete] = api.requests("DELETE")
    assert delete.body["preconditions"] == {"uid": mirror["metadata"]["uid"]}
    assert list(api.objects) == [pod_path("default", theirs)]


# --- the loop ------------------------------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_to_30_with_jitter():
    assert [backoff_delay(n, 0.5) for n in (1, 2, 3, 7, 8, 20)] == [0.5, 1.0, 2.0, 30.0, 30.0, 30.0]
    assert backoff_delay(1, 0.0) == pytest.approx(0.4) and backoff_delay(1, 0.999) == pytest.approx(0.6, abs=1e-3)
    assert backoff_delay(30, 0.999) <= BACKOFF_MAX_S * 1.2


def test_run_backs_off_while_the_cloud_is_away_then_drains_and_polls(api, outbox, uplink):
    uid = cloud_pod(api, "web")
    outbox.pod_status("default", "web", uid, running(), mirror=False)
    api.down = True

    def on_wait(waits: int) -> None:
        api.down = waits < 4

    stop = FakeStop(waits=6, on_wait=on_wait)
    with capture_logs() as logs:
        uplink.run(stop)

    assert stop.delays == [0.5, 1.0, 2.0, 4.0, POLL_INTERVAL_S, POLL_INTERVAL_S]
    assert len(outbox) == 0 and status_of(api, "web") == running()
    assert [entry["log_level"] for entry in logs] == ["warning", "info"]  # once down, once back
    assert len(api.requests("PATCH")) == 5  # four tries while away, then the one that went through; idle: none
