"""Outbox: ordered, compacted per pod, nothing lost when an item is replaced mid-send."""
from __future__ import annotations

import pytest

from edgeworkers import constants
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


def event(name: str, count: int = 1) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, "reason": "Killing", "count": count}


def test_statuses_drain_ahead_of_events(outbox):
    outbox.event("default", event("a.1"))
    outbox.pod_status("default", "a", "ua", {"phase": "Running"}, mirror=False)
    outbox.event("default", event("a.2"))
    outbox.pod_deleted("default", "b", "ub", mirror=False)
    outbox.node_metrics("n1", {"usage": {}})
    assert [i.key for i in outbox.peek()] == ["pod:default/a", "pod:default/b", "metrics:n1", "event:default/a.1",
                                              "event:default/a.2"]  # fmt: skip
    assert [i.key for i in outbox.peek(limit=2)] == ["pod:default/a", "pod:default/b"]
    assert len(outbox) == 5
    for item in outbox.peek():
        assert outbox.ack(item)
    assert len(outbox) == 0 and outbox.peek() == []


def test_a_repeated_event_replaces_its_pending_copy_and_an_ack_of_the_older_keeps_it(outbox):
    outbox.event("default", event("a.1"))
    [sent] = outbox.peek()
    outbox.event("default", event("a.1", count=2))
    assert not outbox.ack(sent)
    [left] = outbox.peek()
    assert left.payload["event"]["count"] == 2 and outbox.ack(left)


def test_events_past_the_cap_drop_the_oldest_counted_and_logged_once_per_burst(fake_redis, caplog):
    outbox = Outbox(fake_redis, max_events=3)
    for i in range(3):
        outbox.pod_status("default", f"p{i}", "u", {"phase": "Running"}, mirror=False)
    with caplog.at_level("WARNING", logger="edgeworkers.metamanager.outbox"):
        for i in range(6):
            outbox.event("default", event(f"e.{i}"))
    assert [i.key for i in outbox.peek()] == ["pod:default/p0", "pod:default/p1", "pod:default/p2", "event:default/e.3",
                                              "event:default/e.4", "event:default/e.5"]  # fmt: skip
    assert outbox.events_dropped() == 3 and len(fake_redis.hkeys(constants.KEY_OUTBOX_ITEMS)) == 6
    assert len([r for r in caplog.records if "dropped" in r.message]) == 1

    for item in outbox.peek()[-2:]:  # the uplink sends two: room again, the burst is over
        outbox.ack(item)
    caplog.clear()
    with caplog.at_level("WARNING", logger="edgeworkers.metamanager.outbox"):
        for i in range(6, 10):
            outbox.event("default", event(f"e.{i}"))
    assert outbox.events_dropped() == 5 and len([r for r in caplog.records if "dropped" in r.message]) == 1


def test_statuses_are_never_dropped(fake_redis):
    outbox = Outbox(fake_redis, max_events=1)
    for i in range(50):
        outbox.pod_status("default", f"p{i}", "u", {"phase": "Running"}, mirror=False)
        outbox.event("default", event(f"e.{i}"))
    assert len(outbox) == 51 and outbox.events_dropped() == 49


def test_an_outbox_without_room_for_an_event_is_refused(fake_redis):
    with pytest.raises(ValueError, match="at least one event"):
        Outbox(fake_redis, max_events=0)
