"""MetaStore: ordered, idempotent writes; tombstones; compare-and-set."""
from __future__ import annotations

import pytest

from edgeworkers.metamanager.store import CONFIGMAP, POD, Conflict, MetaStore, Put


def obj(name: str, rv: str | None, **extra) -> dict:
    meta = {"name": name, "namespace": "default"}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"metadata": meta, **extra}


@pytest.fixture
def store(fake_redis) -> MetaStore:
    return MetaStore(fake_redis)


def test_the_same_version_redelivered_changes_nothing(store):
    assert store.put(POD, obj("web", "5", spec={"v": 1})) is Put.STORED
    assert store.put(POD, obj("web", "5", spec={"v": 1})) is Put.UNCHANGED
    assert store.put(POD, obj("web", "4", spec={"v": 0})) is Put.STALE
    assert store.get(POD, "default", "web")["spec"] == {"v": 1}


@pytest.mark.parametrize(
    ("versions", "final"),
    [
        (["1", "2", "3"], "3"),
        (["3", "1", "2"], "3"),  # reordered: the newest wins whatever the arrival order
        (["2", "3", "2", "1"], "3"),  # replayed
        (["9", "10"], "10"),  # numeric, not lexical
    ],
)
def test_writes_in_any_order_leave_the_newest(store, versions, final):
    for rv in versions:
        store.put(POD, obj("web", rv, spec={"rv": rv}))
    assert store.get(POD, "default", "web")["spec"] == {"rv": final}


def test_a_delete_leaves_a_tombstone_that_refuses_a_late_insert(store):
    store.put(POD, obj("web", "5"))
    assert store.delete(POD, "default", "web", deleted_version="7")
    assert store.tombstone(POD, "default", "web") == 7
    assert store.put(POD, obj("web", "6")) is Put.STALE  # a late event of the deleted pod
    assert store.put(POD, obj("web", "7")) is Put.STALE
    assert store.get(POD, "default", "web") is None and store.keys(POD) == set()
    assert store.put(POD, obj("web", "8")) is Put.STORED  # re-created at the cloud: newer


def test_a_tombstone_keeps_the_newest_version_it_saw(store):
    store.delete(POD, "default", "web", deleted_version="9")
    store.delete(POD, "default", "web", deleted_version="4")
    assert store.tombstone(POD, "default", "web") == 9


def test_a_tombstone_expires(store, fake_redis):
    store.delete(CONFIGMAP, "default", "cfg", deleted_version="3")
    [key] = [k for k in fake_redis.keys("*tombstone*")]
    assert 0 < fake_redis.ttl(key)


def test_compare_and_set_refuses_a_writer_that_read_another_version(store):
    store.put(POD, obj("web", "1"))
    assert store.put(POD, obj("web", "2"), expect="1") is Put.STORED
    with pytest.raises(Conflict) as caught:
        store.put(POD, obj("web", "2", spec={"other": True}), expect="1")  # read "1" too, came second
    assert (caught.value.expected, caught.value.found) == ("1", "2")
    with pytest.raises(Conflict):
        store.put(POD, obj("new", "1"), expect="1")  # expected one stored; none is
    assert store.put(POD, obj("new", "1"), expect=None) is Put.STORED
    with pytest.raises(Conflict):
        store.put(POD, obj("new", "1"), expect=None)  # expected none; one is


def test_a_conditional_delete_keeps_a_newer_write(store):
    store.put(POD, obj("web", "2"))
    assert not store.delete(POD, "default", "web", resource_version="1")
    assert store.get(POD, "default", "web") is not None
    assert store.delete(POD, "default", "web", resource_version="2")
    assert store.get(POD, "default", "web") is None


def test_a_forgotten_object_leaves_no_tombstone_and_may_be_stored_again_as_it_was(store):
    store.put(CONFIGMAP, obj("cfg", "5"))
    assert store.delete(CONFIGMAP, "default", "cfg", tombstone=False)
    assert store.tombstone(CONFIGMAP, "default", "cfg") is None
    assert store.put(CONFIGMAP, obj("cfg", "5")) is Put.STORED
