"""ConfigRefresher: MetaManager holds exactly the configmaps and secrets its pods reference, as fresh as the cloud's."""
from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from cryptography.fernet import Fernet
from structlog.testing import capture_logs

from edgeworkers.bridge.configs import ConfigRefresher, object_path
from edgeworkers.kubeclient import ApiError
from edgeworkers.messages import Message
from edgeworkers.metamanager.crypto import Cipher
from edgeworkers.metamanager.store import CONFIGMAP, POD, SECRET, MetaStore
from tests.unit.bridge.fakecloud import FakeStop

SECRET_VALUE = "hunter2-do-not-log"


def pod(name: str, *, configmap: str | None = None, secret: str | None = None, deleting: bool = False) -> dict:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if configmap:
        container["envFrom"] = [{"configMapRef": {"name": configmap}}]
    spec: dict[str, Any] = {"containers": [container]}
    if secret:
        spec["volumes"] = [{"name": "s", "secret": {"secretName": secret}}]
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": spec}


def configmap(name: str, rv: str, **data: str) -> dict:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
            "data": data}


def secret(name: str, rv: str, value: str = SECRET_VALUE) -> dict:
    return {"kind": "Secret", "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
            "data": {"password": base64.b64encode(value.encode()).decode()}, "type": "Opaque"}


@pytest.fixture
def store(fake_redis) -> MetaStore:
    return MetaStore(fake_redis, Cipher(Fernet.generate_key()))


@pytest.fixture
def sent() -> list[Message]:
    return []


@pytest.fixture
def refresher(api, store, sent) -> ConfigRefresher:
    return ConfigRefresher(api, store, sent.append)


def synced(sent: list[Message]) -> list[str]:
    assert all(message.route.operation == "update" for message in sent)
    return sorted(message.key for message in sent)


def test_referenced_objects_are_fetched_and_stored(api, store, sent, refresher):
    store.put(POD, pod("web", configmap="cfg", secret="pw"))
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5", mode="fast"))
    api.add(object_path(SECRET, "default", "pw"), secret("pw", "6"))
    api.add(object_path(CONFIGMAP, "default", "unused"), configmap("unused", "7"))

    assert refresher.refresh() == ["default/configmap/cfg", "default/secret/pw"]

    assert store.get(CONFIGMAP, "default", "cfg")["data"] == {"mode": "fast"}
    assert store.get(SECRET, "default", "pw") == api.objects[object_path(SECRET, "default", "pw")]
    assert store.keys(CONFIGMAP) == {"default/cfg"}
    assert synced(sent) == ["default/web"]
    assert {call.path for call in api.calls} == {object_path(CONFIGMAP, "default", "cfg"),
                                                 object_path(SECRET, "default", "pw")}


def test_a_configmap_change_syncs_exactly_the_pods_that_reference_it(api, store, sent, refresher):
    for p in (pod("a", configmap="cfg"), pod("b", configmap="cfg", secret="pw"), pod("c", configmap="other"),
              pod("d", secret="pw"), pod("going", configmap="cfg", deleting=True)):
        store.put(POD, p)
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5", mode="fast"))
    api.add(object_path(CONFIGMAP, "default", "other"), configmap("other", "6"))
    api.add(object_path(SECRET, "default", "pw"), secret("pw", "7"))
    refresher.refresh()
    sent.clear()

    assert refresher.refresh() == []  # nothing changed: nothing stored, nothing synced
    assert sent == []

    api.objects[object_path(CONFIGMAP, "default", "cfg")] = configmap("cfg", "9", mode="slow")
    assert refresher.refresh() == ["default/configmap/cfg"]
    assert store.get(CONFIGMAP, "default", "cfg")["data"] == {"mode": "slow"}
    assert synced(sent) == ["default/a", "default/b"]  # not c, d, nor the pod being deleted
    assert sent[0].content == store.get(POD, "default", sent[0].key.split("/")[1])


def test_a_pod_referencing_two_changed_objects_is_synced_once(api, store, sent, refresher):
    store.put(POD, pod("web", configmap="cfg", secret="pw"))
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5"))
    api.add(object_path(SECRET, "default", "pw"), secret("pw", "6"))
    refresher.refresh()
    assert synced(sent) == ["default/web"]


def test_an_object_deleted_at_the_cloud_is_deleted_and_its_pods_synced(api, store, sent, refresher):
    store.put(POD, pod("web", configmap="cfg"))
    store.put(POD, pod("other", configmap="never-existed"))
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5"))
    refresher.refresh()
    sent.clear()
    del api.objects[object_path(CONFIGMAP, "default", "cfg")]

    assert refresher.refresh() == ["default/configmap/cfg"]

    assert store.get(CONFIGMAP, "default", "cfg") is None
    assert store.tombstone(CONFIGMAP, "default", "cfg") == 5  # a late copy of it cannot come back
    assert synced(sent) == ["default/web"]


def test_objects_no_pod_references_are_dropped_and_can_come_back(api, store, sent, refresher):
    store.put(POD, pod("web", configmap="cfg", secret="pw"))
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5"))
    api.add(object_path(SECRET, "default", "pw"), secret("pw", "6"))
    refresher.refresh()
    store.delete(POD, "default", "web")
    api.calls.clear()

    assert refresher.refresh() == ["default/configmap/cfg", "default/secret/pw"]
    assert store.keys(CONFIGMAP) == set() and store.keys(SECRET) == set()
    assert api.calls == []  # unreferenced objects are not even asked for

    store.put(POD, pod("web2", configmap="cfg"))  # the same, unchanged configmap is wanted again
    assert refresher.refresh() == ["default/configmap/cfg"]
    assert store.get(CONFIGMAP, "default", "cfg") is not None


def test_an_unreachable_cloud_keeps_what_is_stored_and_is_logged_once(api, store, sent, refresher):
    store.put(POD, pod("web", configmap="cfg", secret="pw"))
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5"))
    api.add(object_path(SECRET, "default", "pw"), secret("pw", "6"))
    refresher.refresh()
    sent.clear()
    api.down = True

    with capture_logs() as logs:
        assert refresher.refresh() == []
        assert refresher.refresh() == []
        api.down = False
        api.objects[object_path(SECRET, "default", "pw")] = secret("pw", "8", "new")
        assert refresher.refresh() == ["default/secret/pw"]

    assert store.get(CONFIGMAP, "default", "cfg") is not None
    assert [entry["log_level"] for entry in logs if "reachable" in entry["event"]] == ["warning", "info"]
    assert synced(sent) == ["default/web"]


def test_a_refused_read_keeps_the_stored_copy_and_is_logged_once(api, store, sent, refresher):
    store.put(POD, pod("web", configmap="cfg"))
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5"))
    refresher.refresh()
    forbidden = ApiError(403, "Forbidden", "no relationship found between node and this object")
    api.fail("GET", object_path(CONFIGMAP, "default", "cfg"), forbidden, forbidden)
    with capture_logs() as logs:
        refresher.refresh()
        refresher.refresh()
    assert store.get(CONFIGMAP, "default", "cfg") is not None
    [warning] = logs
    assert (warning["log_level"], warning["name"], warning["code"]) == ("warning", "cfg", 403)


def test_secret_values_are_never_logged(api, store, sent, refresher, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    store.put(POD, pod("web", secret="pw"))
    api.add(object_path(SECRET, "default", "pw"), secret("pw", "6"))
    with capture_logs() as logs:
        refresher.refresh()
        api.objects[object_path(SECRET, "default", "pw")] = secret("pw", "7", "changed-" + SECRET_VALUE)
        refresher.refresh()
        store.delete(POD, "default", "web")
        refresher.refresh()
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    logged = repr(logs) + caplog.text + capsys.readouterr().out
    assert logs and SECRET_VALUE not in logged and encoded not in logged and "password" not in logged


def test_run_refreshes_every_interval_until_stopped(api, store, sent):
    store.put(POD, pod("web", configmap="cfg"))
    api.add(object_path(CONFIGMAP, "default", "cfg"), configmap("cfg", "5"))
    stop = FakeStop(waits=3)
    ConfigRefresher(api, store, sent.append, interval_s=7).run(stop)
    assert stop.delays == [7, 7, 7]
    assert len(api.requests("GET")) == 3
    assert synced(sent) == ["default/web"]


def test_nothing_is_dropped_before_the_pod_watcher_listed_the_clouds_pods(api, store, sent):
    """At a bridge start, a pod created while it was down is not stored yet: its configmap must not be dropped."""
    cipher = Cipher(Fernet.generate_key())
    store = MetaStore(store.redis, cipher)
    store.put(CONFIGMAP, configmap("cfg", "5"))  # kept from before; its pod arrives with the first list
    listed = False
    refresher = ConfigRefresher(api, store, sent.append, pods_listed=lambda: listed)
    assert refresher.refresh() == []
    assert store.keys(CONFIGMAP) == {"default/cfg"}
    listed = True
    assert refresher.refresh() == ["default/configmap/cfg"]
    assert store.keys(CONFIGMAP) == set()
