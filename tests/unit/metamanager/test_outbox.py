"""Outbox: ordered, compacted per pod, nothing lost when an item is replaced mid-send."""
from __future__ import annotations

import pytest

from edgeworkers.metamanager.outbox import POD_DELETED, POD_STATUS, Outbox


@pytest.fixture
def outbox(fake_redis) -> Outbox:
    return Outbox(fake_redis)


def names(outbox: Outbox) -> list[tuple[str, str]]:
    return [(i.payload["name"], i.payload.get("status", {}).get("phase", i.payload["op"])) for i in outbox.peek()]


def test_items_come_out_in_the_order_they_were_last_put(outbox):
    outbox.pod_status("default", "a", "ua", {"phase": "Pending"}, mirror=False)
    outbox.pod_status("default", "b", "ub", {"phase": "Pending"}, mirror=False)
    outbox.pod_status("default", "c", "uc", {"phase": "Pending"}, mirror=True)
    outbox.pod_status("default", "a", "ua", {"phase": "Running"}, mirror=False)
    assert names(outbox) == [("b", "Pending"), ("c", "Pending"), ("a", "Running")]
    assert len(outbox) == 3


def test_a_pods_statuses_compact_to_the_latest_while_the_cloud_is_away(outbox):
    for phase in ("Pending", "Running", "Running", "Failed"):
        outbox.pod_status("default", "a", "ua", {"phase": phase}, mirror=False)
    assert names(outbox) == [("a", "Failed")]


def test_a_deletion_replaces_the_pods_pending_status(outbox):
    outbox.pod_status("default", "a", "ua", {"phase": "Running"}, mirror=False)
    outbox.pod_deleted("default", "a", "ua", mirror=False)
    [item] = outbox.peek()
    assert item.payload == {"op": POD_DELETED, "namespace": "default", "name": "a", "uid": "ua", "mirror": False}


def test_an_ack_removes_what_was_sent_but_not_what_replaced_it_meanwhile(outbox):
    outbox.pod_status("default", "a", "ua", {"phase": "Pending"}, mirror=False)
    [sent] = outbox.peek()
    outbox.pod_status("default", "a", "ua", {"phase": "Running"}, mirror=False)  # while `sent` was in flight
    assert not outbox.ack(sent)
    [left] = outbox.peek()
    assert left.payload["op"] == POD_STATUS and left.payload["status"] == {"phase": "Running"}
    assert outbox.ack(left) and len(outbox) == 0 and outbox.peek() == []


def test_peek_is_bounded_and_does_not_remove(outbox):
    for i in range(5):
        outbox.pod_status("default", f"p{i}", "u", {"phase": "Running"}, mirror=False)
    assert [i.payload["name"] for i in outbox.peek(limit=2)] == ["p0", "p1"]
    assert len(outbox) == 5
