import datetime as dt

import pytest

from edgeworkers.cloud.store import ADDED, DELETED, MODIFIED, Store
from edgeworkers.k8s.status import APIError

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "objects.db", clock=lambda: T0)
    yield s
    s.close()


def pod(name="web", namespace="default", **spec):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"containers": [{"name": "c"}], **spec}}


def test_create_fills_identity_and_returns_its_added_event(store):
    event = store.create("pods", pod())
    store.flush()
    meta = event.object["metadata"]
    assert event.type == ADDED and event.rv == int(meta["resourceVersion"]) == store.resource_version
    assert meta["uid"] and meta["creationTimestamp"] == "2026-01-02T03:04:05Z" and meta["generation"] == 1
    assert event.object["kind"] == "Pod" and event.object["apiVersion"] == "v1"


def test_resource_versions_increase_across_resources(store):
    first = store.create("pods", pod()).rv
    second = store.create("configmaps", {"metadata": {"name": "cm", "namespace": "default"}, "data": {}}).rv
    assert second == first + 1


def test_create_of_an_existing_name_is_already_exists(store):
    store.create("pods", pod())
    with pytest.raises(APIError) as err:
        store.create("pods", pod())
    assert err.value.code == 409 and err.value.reason == "AlreadyExists"
    assert err.value.status["message"] == 'pods "web" already exists'


def test_generate_name_appends_a_random_suffix(store):
    obj = {"metadata": {"generateName": "web-", "namespace": "default"}, "spec": {}}
    name = store.create("pods", obj).object["metadata"]["name"]
    assert name.startswith("web-") and len(name) == 9


def test_update_with_a_stale_resource_version_is_a_conflict(store):
    created = store.create("pods", pod()).object
    stale = {**created, "metadata": dict(created["metadata"])}
    newer = {**created, "metadata": dict(created["metadata"]), "spec": {"containers": [{"name": "d"}]}}
    store.update("pods", newer)
    with pytest.raises(APIError) as err:
        store.update("pods", stale)
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert "the object has been modified" in err.value.status["message"]


def test_update_bumps_generation_only_on_spec_changes(store):
    created = store.create("pods", pod()).object
    relabelled = {**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
    event = store.update("pods", relabelled)
    assert event.type == MODIFIED and event.object["metadata"]["generation"] == 1
    assert event.old is created
    respecced = {**event.object, "spec": {"containers": [{"name": "x"}]}}
    assert store.update("pods", respecced).object["metadata"]["generation"] == 2


def test_update_keeps_identity_and_a_no_op_makes_no_event(store):
    created = store.create("pods", pod()).object
    rv = store.resource_version
    forged = {**created, "metadata": {**created["metadata"], "uid": "forged", "creationTimestamp": "x"}}
    assert store.update("pods", forged) is None
    assert store.resource_version == rv


def test_delete_returns_the_object_with_a_new_resource_version(store):
    created = store.create("pods", pod()).object
    event = store.delete("pods", "default", "web")
    assert event.type == DELETED and int(event.object["metadata"]["resourceVersion"]) == event.rv
    assert event.rv > int(created["metadata"]["resourceVersion"])
    with pytest.raises(APIError) as err:
        store.get("pods", "default", "web")
    assert err.value.code == 404 and err.value.status["message"] == 'pods "web" not found'


def test_begin_deletion_sets_the_deadline_and_only_shortens_it(store):
    store.create("pods", pod())
    event = store.begin_deletion("pods", "default", "web", 30)
    assert event.object["metadata"]["deletionTimestamp"] == "2026-01-02T03:04:35Z"
    assert event.object["metadata"]["deletionGracePeriodSeconds"] == 30
    assert store.begin_deletion("pods", "default", "web", 60) is None
    assert store.begin_deletion("pods", "default", "web", 5).object["metadata"]["deletionGracePeriodSeconds"] == 5


def test_objects_and_counter_survive_a_restart(tmp_path):
    first = Store(tmp_path / "objects.db")
    first.create("pods", pod())
    first.flush()
    rv = first.resource_version
    first.close()
    second = Store(tmp_path / "objects.db")
    assert second.get("pods", "default", "web")["metadata"]["resourceVersion"] == str(rv)
    assert second.resource_version == rv
    assert second.create("pods", pod("other")).rv == rv + 1
    second.close()


def test_list_filters_by_namespace_in_name_order(store):
    for name, ns in (("b", "default"), ("a", "default"), ("c", "other")):
        store.create("pods", pod(name, ns))
    assert [p["metadata"]["name"] for p in store.list("pods", "default")] == ["a", "b"]
    assert [p["metadata"]["name"] for p in store.list("pods")] == ["a", "b", "c"]
