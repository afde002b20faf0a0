"""MetaStore: desired state keyed by namespace/kind/name, never going backwards."""
from __future__ import annotations

import pytest

from edgeworkers import constants
from edgeworkers.metamanager import store as store_module
from edgeworkers.metamanager.store import CONFIGMAP, POD, MetaStore, is_older


def obj(name: str, rv: str | None = None, namespace: str = "default", **extra) -> dict:
    meta = {"name": name, "namespace": namespace}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"metadata": meta, **extra}


@pytest.fixture
def store(fake_redis) -> MetaStore:
    return MetaStore(fake_redis)


@pytest.mark.parametrize(
    ("new_rv", "stored_rv", "older"),
    [
        ("5", "6", True),
        ("6", "6", False),
        ("7", "6", False),
        ("10", "9", False),  # numeric, not lexical
        ("abc", "6", False),  # opaque versions are never compared
        ("5", None, False),
        (None, "6", False),
    ],
)
def test_is_older_compares_numeric_resource_versions(new_rv, stored_rv, older):
    assert is_older(obj("a", new_rv), obj("a", stored_rv)) is older


def test_put_then_get_returns_the_object_under_its_kubeedge_key(store, fake_redis):
    assert store.put(POD, obj("web", "3", spec={"containers": []}))
    assert store.get(POD, "default", "web") == obj("web", "3", spec={"containers": []})
    assert fake_redis.exists(f"{constants.KEY_META}:default/pod/web")
    assert store.keys(POD) == {"default/web"}


def test_an_older_resource_version_is_ignored(store):
    assert store.put(POD, obj("web", "7", spec={"v": 2}))
    assert not store.put(POD, obj("web", "6", spec={"v": 1}))
    assert store.get(POD, "default", "web")["spec"] == {"v": 2}
    assert store.put(POD, obj("web", "8", spec={"v": 3}))
    assert store.get(POD, "default", "web")["spec"] == {"v": 3}


def test_kinds_are_separate(store):
    store.put(POD, obj("same"))
    store.put(CONFIGMAP, obj("same", data={"k": "v"}))
    assert store.keys(POD) == {"default/same"}
    assert store.get(CONFIGMAP, "default", "same")["data"] == {"k": "v"}
    store.delete(POD, "default", "same")
    assert store.get(POD, "default", "same") is None
    assert store.get(CONFIGMAP, "default", "same") is not None


def test_list_filters_by_namespace_and_sorts(store):
    store.put(POD, obj("b", namespace="ns1"))
    store.put(POD, obj("a", namespace="ns1"))
    store.put(POD, obj("c", namespace="ns2"))
    assert [o["metadata"]["name"] for o in store.list(POD)] == ["a", "b", "c"]
    assert [o["metadata"]["name"] for o in store.list(POD, "ns2")] == ["c"]
    assert store.list(POD, "nothing") == []


def test_each_decodes_an_object_only_when_reached_and_skips_those_without_the_text(store, monkeypatch):
    store.put(POD, obj("a", spec={"probe": "livenessProbe"}))
    store.put(POD, obj("b", namespace="ns2"))
    store.put(POD, obj("c", spec={"probe": "livenessProbe"}))
    decoded = []
    original = store_module.json.loads
    monkeypatch.setattr(store_module.json, "loads", lambda raw: decoded.append(raw) or original(raw))
    each = store.each(POD)
    assert next(each)["metadata"]["name"] == "a" and len(decoded) == 1
    assert [o["metadata"]["name"] for o in each] == ["c", "b"]  # by namespace, then name
    decoded.clear()
    assert [o["metadata"]["name"] for o in store.each(POD, containing=b"livenessProbe")] == ["a", "c"]
    assert len(decoded) == 2
    assert [o["metadata"]["name"] for o in store.each(POD, "ns2")] == ["b"]
    assert list(store.each(POD, "nothing")) == []


def test_delete_removes_object_and_index_entry(store):
    store.put(POD, obj("web"))
    store.delete(POD, "default", "web")
    assert store.get(POD, "default", "web") is None
    assert store.keys(POD) == set()
    store.delete(POD, "default", "web")  # idempotent


def test_a_conditional_delete_keeps_a_newer_write(store):
    store.put(POD, obj("web", "5"))
    assert not store.delete(POD, "default", "web", resource_version="4")
    assert store.get(POD, "default", "web") is not None
    assert store.delete(POD, "default", "web", resource_version="5")
    assert store.get(POD, "default", "web") is None and store.keys(POD) == set()
