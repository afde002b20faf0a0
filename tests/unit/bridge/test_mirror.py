"""Mirror pods: the cloud shows each static pod as a mirror the node owns; created, recreated, removed as needed."""
from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from edgeworkers.bridge.mirror import RECREATE_AFTER_S, MirrorPods, mirror_pod, static_pod_hash
from edgeworkers.constants import ANNOTATION_MIRROR, ANNOTATION_SOURCE, SOURCE_API, SOURCE_FILE
from edgeworkers.kubeclient import ApiError
from edgeworkers.metamanager.store import POD
from tests.unit.bridge.fakecloud import NODE, FakeApi, pod_path, static_pod

NAME = f"web-{NODE}"
KEY = f"default/{NAME}"
STATUS = {"phase": "Running", "podIP": "10.0.0.7"}


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
def mirrors(api, store, status, clock) -> MirrorPods:
    return MirrorPods(api, store, status, NODE, clock=lambda: clock[0])


def cloud_mirror(api: FakeApi, mirrors: MirrorPods, key: str = KEY) -> dict[str, Any]:
    """The mirror at the cloud, told to ``mirrors`` as the watch would."""
    pod = api.objects[pod_path(*key.split("/"))]
    mirrors.observe("MODIFIED", copy.deepcopy(pod))
    return pod


# --- the mirror pod itself ---------------------------------------------------------------------------


def test_mirror_pod_is_the_static_pod_bound_to_the_node_and_annotated_with_its_hash():
    static = static_pod()
    mirror = mirror_pod(static, NODE)
    assert mirror["metadata"] == {
        "name": NAME,
        "namespace": "default",
        "labels": {"app": "web"},
        "annotations": {ANNOTATION_SOURCE: SOURCE_FILE, "team": "edge", ANNOTATION_MIRROR: static_pod_hash(static)},
    }
    assert mirror["spec"] == {**static["spec"], "nodeName": NODE}
    assert "status" not in mirror
    assert static == static_pod()  # pure


def test_the_hash_follows_what_makes_the_pod_and_not_its_versions():
    base = static_pod()
    assert static_pod_hash(static_pod(rv="9")) == static_pod_hash(base)
    assert static_pod_hash({**base, "status": {"phase": "Failed"}}) == static_pod_hash(base)
    assert static_pod_hash(static_pod(uid="other")) != static_pod_hash(base)
    assert static_pod_hash(static_pod(hostNetwork=True)) != static_pod_hash(base)
    relabelled = copy.deepcopy(base)
    relabelled["metadata"]["labels"]["tier"] = "front"
    assert static_pod_hash(relabelled) != static_pod_hash(base)
    mirrored = mirror_pod(base, NODE)  # the mirror's own annotation does not count
    assert static_pod_hash({**base, "metadata": {**base["metadata"], **mirrored["metadata"]}}) == static_pod_hash(base)


# --- sync ------------------------------------------------------------------------------------------


def test_a_missing_mirror_is_created_and_given_the_static_pods_last_status(api, store, outbox, status, mirrors):
    store.put(POD, static_pod())
    status.set(KEY, None, STATUS)
    mirrors.sync()
    created = api.objects[pod_path("default", NAME)]
    assert created["metadata"]["annotations"][ANNOTATION_MIRROR] == static_pod_hash(static_pod())
    assert created["spec"]["nodeName"] == NODE
    assert mirrors.uid_of("default", NAME) == created["metadata"]["uid"]
    [item] = outbox.peek()
    assert item.payload == {"op": "pod_status", "namespace": "default", "name": NAME, "uid": "static-uid",
                            "status": STATUS, "mirror": True}


def test_a_current_mirror_costs_no_request(api, store, mirrors):
    store.put(POD, static_pod())
    mirrors.sync()
    cloud_mirror(api, mirrors)
    api.calls.clear()
    mirrors.sync()
    assert api.calls == []


def test_cloud_pods_and_pods_being_deleted_get_no_mirror(api, store, mirrors):
    cloud = static_pod("cloud-pod")
    cloud["metadata"]["annotations"][ANNOTATION_SOURCE] = SOURCE_API
    going = static_pod(f"going-{NODE}")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    store.put(POD, cloud)
    store.put(POD, going)
    mirrors.sync()
    assert api.calls == []


def test_a_mirror_deleted_at_the_cloud_is_deleted_for_good_and_created_anew(api, store, outbox, status, mirrors, clock):
    store.put(POD, static_pod())
    status.set(KEY, None, STATUS)
    mirrors.sync()
    outbox.ack(outbox.peek()[0])
    old_uid = cloud_mirror(api, mirrors)["metadata"]["uid"]
    api.delete(pod_path("default", NAME), {})  # kubectl delete pod: it waits for the node
    cloud_mirror(api, mirrors)
    api.calls.clear()

    mirrors.sync()
    [delete] = api.calls  # confirmed; not created anew yet, so whoever deleted it sees it gone
    assert (delete.method, delete.path) == ("DELETE", pod_path("default", NAME))
    assert delete.body == {"gracePeriodSeconds": 0, "preconditions": {"uid": old_uid}}
    assert pod_path("default", NAME) not in api.objects
    assert mirrors.ensure("default", NAME) is None  # the uplink's status patch does not bring it back early either
    clock[0] += RECREATE_AFTER_S - 0.1
    mirrors.sync()
    assert api.calls == [delete]

    clock[0] += 0.1
    mirrors.sync()
    _, post = api.calls
    assert (post.method, post.path) == ("POST", pod_path("default", NAME))
    new = api.objects[pod_path("default", NAME)]
    assert new["metadata"]["uid"] != old_uid and "deletionTimestamp" not in new["metadata"]
    assert [item.payload["status"] for item in outbox.peek()] == [STATUS]


def test_a_mirror_changed_at_the_cloud_is_replaced_by_the_nodes(api, store, mirrors):
    store.put(POD, static_pod())
    mirrors.sync()
    tampered = api.objects[pod_path("default", NAME)]
    tampered["metadata"]["annotations"][ANNOTATION_MIRROR] = "edited"
    tampered["spec"]["containers"][0]["image"] = "evil"
    cloud_mirror(api, mirrors)

    mirrors.sync()

    replaced = api.objects[pod_path("default", NAME)]
    assert replaced["metadata"]["annotations"][ANNOTATION_MIRROR] == static_pod_hash(static_pod())
    assert replaced["spec"]["containers"][0]["image"] == "busybox"


def test_a_reapplied_static_pod_gets_a_new_mirror(api, store, mirrors):
    store.put(POD, static_pod())
    mirrors.sync()
    cloud_mirror(api, mirrors)
    store.put(POD, static_pod(rv="2", hostNetwork=True))

    mirrors.sync()

    assert [call.method for call in api.calls[-2:]] == ["DELETE", "POST"]
    assert api.objects[pod_path("default", NAME)]["spec"]["hostNetwork"] is True


def test_a_mirror_whose_static_pod_is_gone_is_deleted(api, store, mirrors):
    store.put(POD, static_pod())
    mirrors.sync()
    uid = cloud_mirror(api, mirrors)["metadata"]["uid"]
    store.delete(POD, "default", NAME)
    api.calls.clear()

    mirrors.sync()

    [delete] = api.calls
    assert delete.body == {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
    assert pod_path("default", NAME) not in api.objects
    assert mirrors.uid_of("default", NAME) is None


def test_the_mirror_of_a_static_pod_being_deleted_stays_until_its_containers_are_gone(api, store, mirrors):
    store.put(POD, static_pod())
    mirrors.sync()
    cloud_mirror(api, mirrors)
    going = static_pod(rv="2")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    store.put(POD, going)
    api.calls.clear()

    mirrors.sync()

    assert api.calls == []


def test_a_cloud_pod_holding_the_name_is_never_overwritten_and_logged_once(api, store, mirrors):
    store.put(POD, static_pod())
    api.add(pod_path("default", NAME), {"metadata": {"name": NAME, "namespace": "default"},
                                        "spec": {"nodeName": NODE, "containers": []}})
    cloud = copy.deepcopy(api.objects[pod_path("default", NAME)])
    with capture_logs() as logs:
        mirrors.sync()
        mirrors.sync()
        assert mirrors.ensure("default", NAME) is None
    assert api.objects[pod_path("default", NAME)] == cloud
    assert {call.method for call in api.calls} == {"POST", "GET"}
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["pod"] == KEY and "cloud pod" in warnings[0]["event"]


def test_our_mirror_found_at_create_is_adopted(api, store, mirrors):
    store.put(POD, static_pod())
    existing = api.add(pod_path("default", NAME), mirror_pod(static_pod(), NODE))  # left by an earlier run
    assert mirrors.ensure("default", NAME)["metadata"]["uid"] == existing["metadata"]["uid"]
    assert mirrors.uid_of("default", NAME) == existing["metadata"]["uid"]
    api.calls.clear()
    mirrors.sync()
    assert api.calls == []


def test_ensure_creates_only_for_a_stored_static_pod(api, store, mirrors):
    assert mirrors.ensure("default", NAME) is None
    store.put(POD, static_pod())
    created = mirrors.ensure("default", NAME)
    assert created == api.objects[pod_path("default", NAME)]


def test_an_unreachable_cloud_is_logged_once_and_the_next_round_catches_up(api, store, mirrors):
    store.put(POD, static_pod())
    api.down = True
    with capture_logs() as logs:
        mirrors.sync()
        mirrors.sync()
        api.down = False
        mirrors.sync()
    assert pod_path("default", NAME) in api.objects
    assert [entry["log_level"] for entry in logs if "unreachable" in entry["event"]] == ["warning"]


def test_a_refused_mirror_is_logged_once_and_does_not_stop_the_others(api, store, mirrors):
    store.put(POD, static_pod())
    store.put(POD, static_pod(f"db-{NODE}"))
    invalid = ApiError(422, "Invalid", "spec.containers[0].image: Required value")
    api.fail("POST", pod_path("default", f"db-{NODE}"), invalid, invalid)
    with capture_logs() as logs:
        mirrors.sync()
        mirrors.sync()
    assert list(api.objects) == [pod_path("default", NAME)]
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["pod"] == f"default/db-{NODE}" and "Required value" in warning["error"]


# --- what the watch tells ----------------------------------------------------------------------------


def test_observe_and_reconcile_know_only_this_nodes_mirror_pods(api, mirrors):
    mine = api.add(pod_path("default", NAME), mirror_pod(static_pod(), NODE))
    other_node = api.add(pod_path("default", "web-edge-2"), mirror_pod(static_pod("web-edge-2"), "edge-2"))
    cloud_pod = api.add(pod_path("default", "plain"), {"metadata": {"name": "plain"}, "spec": {"nodeName": NODE}})
    for pod in (mine, other_node, cloud_pod):
        mirrors.observe("ADDED", pod)
    assert mirrors.uid_of("default", NAME) == mine["metadata"]["uid"]
    assert mirrors.uid_of("default", "web-edge-2") is None and mirrors.uid_of("default", "plain") is None
    mirrors.observe("DELETED", mine)
    assert mirrors.uid_of("default", NAME) is None
    mirrors.reconcile([mine, other_node, cloud_pod])
    assert mirrors.uid_of("default", NAME) == mine["metadata"]["uid"]
    mirrors.reconcile([])
    assert mirrors.uid_of("default", NAME) is None


def test_the_late_deletion_event_of_a_replaced_mirror_does_not_forget_its_successor(api, store, mirrors, clock):
    store.put(POD, static_pod())
    mirrors.sync()
    old = copy.deepcopy(cloud_mirror(api, mirrors))
    api.delete(pod_path("default", NAME), {})
    cloud_mirror(api, mirrors)
    mirrors.sync()  # deleted
    clock[0] += RECREATE_AFTER_S
    mirrors.sync()  # and created anew
    new_uid = api.objects[pod_path("default", NAME)]["metadata"]["uid"]
    mirrors.observe("DELETED", old)
    assert mirrors.uid_of("default", NAME) == new_uid


def test_run_syncs_until_stopped(api, store, mirrors):
    store.put(POD, static_pod())
    stop = threading.Event()
    thread = threading.Thread(target=mirrors.run, args=(stop,))
    thread.start()
    try:
        for _ in range(500):
            if pod_path("default", NAME) in api.objects:
                break
            threading.Event().wait(0.01)
        assert pod_path("default", NAME) in api.objects
    finally:
        stop.set()
        mirrors.observe("DELETED", api.objects[pod_path("default", NAME)])  # wakes it at once
        thread.join(timeout=5)
    assert not thread.is_alive()
