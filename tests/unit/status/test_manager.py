"""StatusManager: the node's last status of each pod, its way to the cloud, and kubelet's periodic status sync from
the cloud's last-seen copy of each pod."""
from __future__ import annotations

import pytest

from edgeworkers import constants
from edgeworkers.metamanager.outbox import POD_DELETED, POD_STATUS, Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.status.manager import StatusManager

RUNNING = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
NOT_READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}


def cloud_pod(name: str, status: dict, source: str = constants.SOURCE_API, **meta) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "5",
                         "annotations": {constants.ANNOTATION_SOURCE: source}, **meta},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}, "status": status}


@pytest.fixture
def parts(fake_redis) -> tuple[MetaStore, Outbox, StatusManager]:
    store, outbox = MetaStore(fake_redis), Outbox(fake_redis)
    return store, outbox, StatusManager(store, outbox)


def ops(outbox: Outbox) -> list[tuple[str, str]]:
    return [(item.payload["op"], item.payload["name"]) for item in outbox.peek()]


def test_a_pod_the_cloud_shows_otherwise_is_sent_again_and_an_agreeing_one_is_not(parts) -> None:
    store, outbox, resync = parts
    store.put(POD, cloud_pod("marked", NOT_READY))  # the cloud's node-lifecycle controller marked it
    store.put(POD, cloud_pod("agreed", RUNNING))
    for name in ("marked", "agreed"):
        resync.set(f"default/{name}", None, RUNNING)
    assert resync.resync() == ["default/marked"]
    [item] = outbox.peek()
    assert item.payload == {"op": POD_STATUS, "namespace": "default", "name": "marked", "uid": "uid-marked",
                            "status": RUNNING, "mirror": False}


def test_a_pending_item_a_deleting_pod_a_static_pod_and_a_pod_without_status_are_left_alone(parts) -> None:
    store, outbox, resync = parts
    store.put(POD, cloud_pod("confirming", NOT_READY))
    outbox.pod_deleted("default", "confirming", "uid-confirming", mirror=False)  # must not be replaced
    store.put(POD, cloud_pod("deleting", NOT_READY, deletionTimestamp="2026-11-29T00:00:00Z"))
    store.put(POD, cloud_pod("static-edge", NOT_READY, source=constants.SOURCE_FILE))
    store.put(POD, cloud_pod("new", {"phase": "Pending"}))  # not synced yet: no status of the node's
    for name in ("confirming", "deleting", "static-edge"):
        resync.set(f"default/{name}", None, RUNNING)
    assert resync.resync() == []
    assert ops(outbox) == [(POD_DELETED, "confirming")]


def test_a_status_is_queued_for_the_cloud_only_when_it_changed(parts) -> None:
    store, outbox, status = parts
    web = cloud_pod("web", {})
    assert status.set("default/web", web, RUNNING) is True
    assert status.set("default/web", web, dict(RUNNING)) is False  # the same status: nothing queued again
    assert [item.payload["status"] for item in outbox.peek()] == [RUNNING]
    assert status.get("default/web") == RUNNING
    status.forget("default/web")
    assert status.get("default/web") is None


def test_a_static_pods_status_and_deletion_go_to_its_mirror_pod(parts) -> None:
    store, outbox, status = parts
    static = cloud_pod("web-edge", {}, source=constants.SOURCE_FILE)
    status.set("default/web-edge", static, RUNNING)
    [item] = outbox.peek()
    assert (item.payload["op"], item.payload["mirror"]) == (POD_STATUS, True)
    status.confirm_deleted(static)  # replaces the pending status: one item per pod
    assert [(i.payload["op"], i.payload["mirror"]) for i in outbox.peek()] == [(POD_DELETED, True)]


def test_a_status_without_a_desired_pod_is_stored_and_not_sent(parts) -> None:
    store, outbox, status = parts
    assert status.set("default/gone", None, RUNNING) is True
    assert len(outbox) == 0 and status.get("default/gone") == RUNNING


def test_reassert_sends_the_nodes_status_for_the_stored_pod_only(parts) -> None:
    store, outbox, status = parts
    store.put(POD, cloud_pod("web", NOT_READY))
    status.set("default/web", None, RUNNING)
    assert status.reassert(cloud_pod("web", RUNNING)) is False  # the cloud agrees
    assert status.reassert({**cloud_pod("web", NOT_READY), "metadata": {
        **cloud_pod("web", NOT_READY)["metadata"], "uid": "another"}}) is False  # another pod of that name
    assert status.reassert(cloud_pod("web", NOT_READY)) is True
    assert ops(outbox) == [(POD_STATUS, "web")]


def test_a_new_mirror_gets_the_static_pods_last_status(parts) -> None:
    store, outbox, status = parts
    static = cloud_pod("web-edge", {}, source=constants.SOURCE_FILE)
    status.resend_mirror("default/web-edge", static)  # no status yet: nothing
    assert len(outbox) == 0
    status.set("default/web-edge", None, RUNNING)
    status.resend_mirror("default/web-edge", static)
    [item] = outbox.peek()
    assert item.payload["mirror"] is True and item.payload["status"] == RUNNING


def test_a_status_belongs_to_its_pods_uid_not_to_a_pod_created_again_under_its_name(parts, fake_redis) -> None:
    _, outbox, status = parts
    done = {"phase": "Succeeded"}
    status.set("default/job", cloud_pod("job", {}), done)
    assert status.get("default/job") == done and status.get("default/job", "uid-job") == done
    assert status.get("default/job", "uid-of-the-new-job") is None  # deleted and created again: not its memory
    again = cloud_pod("job", {}, uid="uid-of-the-new-job")
    assert status.set("default/job", again, done) is True  # another pod's status, though equal: sent for it
    assert [item.payload["uid"] for item in outbox.peek()] == ["uid-of-the-new-job"]


def test_a_status_stored_by_an_older_version_is_read_and_not_sent_again(parts, fake_redis) -> None:
    _, outbox, status = parts
    fake_redis.set(f"{constants.KEY_POD_STATUS}:default/web", '{"phase":"Running"}')  # no uid kept with it
    assert status.get("default/web", "uid-web") == {"phase": "Running"}
    assert status.set("default/web", cloud_pod("web", {}), {"phase": "Running"}) is False
    assert outbox.peek() == []


def test_the_resync_never_sends_a_status_of_an_earlier_pod_of_the_same_name(parts) -> None:
    store, outbox, status = parts
    status.set("default/job", cloud_pod("job", {}), RUNNING)
    for item in outbox.peek():  # sent
        outbox.ack(item)
    store.put(POD, cloud_pod("job", NOT_READY, uid="uid-of-the-new-job"))  # created again; not synced yet
    assert status.resync() == []
    assert status.reassert(cloud_pod("job", NOT_READY, uid="uid-of-the-new-job")) is False
