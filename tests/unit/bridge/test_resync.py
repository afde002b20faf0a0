"""StatusResync: kubelet's periodic status sync, from the cloud's last-seen copy of each pod."""
from __future__ import annotations

import pytest

from edgeworkers import constants
from edgeworkers.bridge.resync import StatusResync
from edgeworkers.metamanager.outbox import POD_DELETED, POD_STATUS, Outbox
from edgeworkers.metamanager.store import POD, MetaStore

RUNNING = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
NOT_READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}


def cloud_pod(name: str, status: dict, source: str = constants.SOURCE_API, **meta) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "5",
                         "annotations": {constants.ANNOTATION_SOURCE: source}, **meta},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}, "status": status}


@pytest.fixture
def parts(fake_redis) -> tuple[MetaStore, Outbox, StatusResync]:
    store, outbox = MetaStore(fake_redis), Outbox(fake_redis)
    return store, outbox, StatusResync(store, outbox)


def ops(outbox: Outbox) -> list[tuple[str, str]]:
    return [(item.payload["op"], item.payload["name"]) for item in outbox.peek()]


def test_a_pod_the_cloud_shows_otherwise_is_sent_again_and_an_agreeing_one_is_not(parts) -> None:
    store, outbox, resync = parts
    store.put(POD, cloud_pod("marked", NOT_READY))  # the cloud's node-lifecycle controller marked it
    store.put(POD, cloud_pod("agreed", RUNNING))
    for name in ("marked", "agreed"):
        store.put_pod_status(f"default/{name}", RUNNING)
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
        store.put_pod_status(f"default/{name}", RUNNING)
    assert resync.resync() == []
    assert ops(outbox) == [(POD_DELETED, "confirming")]
