"""The store's commits failing on demand (the writer's transaction raises, as on a full disk): a write is seen only
once committed, a failed one is undone whole with what queued behind it and answers a clean 500, the next write
commits, and no resourceVersion anyone saw is handed out again, across a restart too."""
import asyncio
import contextlib
import datetime as dt
import sqlite3
import threading

import orjson
import pytest
import pytest_asyncio

from edgeworkers.cloud.app import API_KEY, create_app
from edgeworkers.cloud.binder import Binder
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub, Matcher
from edgeworkers.k8s.status import APIError

TOKEN = "s3cret"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
SECRET_VALUE = "aHVudGVyMg=="  # what must never appear in an error


class Disk:
    """The writer's commit, failing while ``full`` (as SQLite does on a full disk) or held until ``release``."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        real = store._writer._commit

        def commit(batch, rv):
            self.started.set()
            self.gate.wait(5)
            if self.full:
                raise sqlite3.OperationalError("database or disk is full")
            real(batch, rv)

        monkeypatch.setattr(store._writer, "_commit", commit)


def configmap(name: str, **data: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, "data": data}


@pytest.fixture
def store(tmp_path):
    with contextlib.closing(Store(tmp_path / "objects.db")) as opened:
        yield opened


@pytest.fixture
def disk(store, monkeypatch) -> Disk:
    return Disk(store, monkeypatch)


def test_a_write_is_visible_and_broadcast_only_once_committed(store, disk):
    hub = Hub(store)
    watcher = hub.subscribe("configmaps", Matcher(), store.resource_version)
    disk.gate.clear()
    event = store.create("configmaps", configmap("a"))
    assert disk.started.wait(5)
    assert store.find("configmaps", "default", "a") is not None  # the head: what the next write builds on
    assert store.list_visible("configmaps") == [] and watcher.queue.empty()
    assert store.resource_version < event.rv
    disk.gate.set()
    store.flush()
    assert store.get_visible("configmaps", "default", "a") is event.object and store.resource_version == event.rv
    assert watcher.queue.get_nowait().object is event.object


def test_a_failed_commit_applies_nothing_answers_a_clean_500_and_does_not_stick(store, disk, tmp_path):
    hub = Hub(store)
    rolled_back = []
    store.on_rollback(lambda: rolled_back.append(True))
    kept = store.create("configmaps", configmap("kept", v="1")).object
    store.flush()
    watcher = hub.subscribe("configmaps", Matcher(), store.resource_version)
    committed_rv = store.resource_version
    disk.full = True
    failed = [store.update("configmaps", {**kept, "data": {"v": "2"}}).rv,
              store.create("configmaps", configmap("lost", token=SECRET_VALUE)).rv]
    with pytest.raises(APIError) as err:
        store.flush()
    assert err.value.code == 500 and err.value.reason == "InternalError"
    message = orjson.dumps(err.value.status).decode()
    assert "could not commit" in message and SECRET_VALUE not in message and "lost" not in message
    assert store.get("configmaps", "default", "kept") is kept and store.find("configmaps", "default", "lost") is None
    assert store.list_visible("configmaps") == [kept] and store.resource_version == committed_rv
    assert watcher.queue.empty() and rolled_back == [True]
    store.flush()  # nothing is pending: the failure is not kept for later writes
    disk.full = False  # space freed
    later = store.create("configmaps", configmap("later"))
    store.flush()
    assert later.rv > max(failed)  # the undone numbers, never seen, are not handed out again either
    assert [e.object["metadata"]["name"] for e in (watcher.queue.get_nowait(),)] == ["later"]
    store.close()
    reopened = Store(tmp_path / "objects.db")
    try:
        assert [c["metadata"]["name"] for c in reopened.list("configmaps")] == ["kept", "later"]
        assert reopened.get("configmaps", "default", "kept")["data"] == {"v": "1"}
        assert reopened.resource_version == later.rv
    finally:
        reopened.close()


def test_writes_queued_behind_a_failed_batch_are_undone_with_it(store, disk):
    base = store.create("configmaps", configmap("base", v="0")).object
    store.flush()
    disk.gate.clear()
    disk.full = True
    first = store.update("configmaps", {**base, "data": {"v": "1"}}).object  # the batch being committed
    assert disk.started.wait(5)
    store.update("configmaps", {**first, "data": {"v": "2"}})  # built on the first, queued behind it
    store.delete("configmaps", "default", "base")
    disk.gate.set()
    with pytest.raises(APIError):
        store.flush()
    assert store.get("configmaps", "default", "base") is base and store.list_visible("configmaps") == [base]


def test_a_restart_after_a_commit_never_reissues_its_resource_versions(store, tmp_path):
    """A crash between the commit and its publication: the counter went to disk with the objects."""
    events = [store.create("configmaps", configmap(f"c{i}")) for i in range(3)]
    store._writer.wait(store._writer.submitted)  # committed, not yet settled: nobody was told
    after_crash = Store(tmp_path / "objects.db")
    try:
        assert after_crash.resource_version == events[-1].rv
        assert after_crash.create("configmaps", configmap("next")).rv > events[-1].rv
    finally:
        after_crash.close()


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    app = create_app(settings, TOKEN)
    return await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.asyncio
async def test_over_http_a_failed_write_is_a_status_no_watcher_sees_and_the_next_write_succeeds(client, monkeypatch):
    api = client.server.app[API_KEY]
    disk = Disk(api.store, monkeypatch)
    watch = await client.get(CONFIGMAPS, params={"watch": "true", "resourceVersion": "0"})
    disk.full = True
    resp = await client.post(CONFIGMAPS, json=configmap("lost", token=SECRET_VALUE))
    body = await resp.json()
    assert resp.status == 500 and body["kind"] == "Status" and body["reason"] == "InternalError"
    assert SECRET_VALUE not in await resp.text()
    assert (await client.get(f"{CONFIGMAPS}/lost")).status == 404
    disk.full = False
    resp = await client.post(CONFIGMAPS, json=configmap("later"))
    assert resp.status == 201, await resp.text()
    line = orjson.loads(await asyncio.wait_for(watch.content.readline(), 5))
    assert (line["type"], line["object"]["metadata"]["name"]) == ("ADDED", "later")  # nothing of the failed one
    watch.close()


@pytest.mark.asyncio
async def test_a_read_during_a_commit_answers_what_is_committed(client, monkeypatch):
    api = client.server.app[API_KEY]
    disk = Disk(api.store, monkeypatch)
    disk.gate.clear()
    writing = asyncio.create_task(client.post(CONFIGMAPS, json=configmap("slow")))
    await asyncio.to_thread(disk.started.wait, 5)
    assert (await client.get(f"{CONFIGMAPS}/slow")).status == 404
    listed = await (await client.get(CONFIGMAPS)).json()
    assert listed["items"] == []
    disk.gate.set()
    created = await (await writing).json()
    got = await (await client.get(f"{CONFIGMAPS}/slow")).json()
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_a_binding_a_failed_commit_undid_is_made_again(store, disk):
    """The binder decided and wrote; the commit failed: it looks at every unbound pod again, not only at new events."""
    hub = Hub(store)
    binder = Binder(store, hub, lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    hub.publish(store.create("nodes", {"metadata": {"name": "edge-1"},
                                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))
    hub.publish(store.create("pods", {"metadata": {"name": "web", "namespace": "default"},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    store.flush()
    disk.full = True
    assert binder.bind_pending() == 1
    with pytest.raises(APIError):
        store.flush()
    assert not store.get("pods", "default", "web")["spec"].get("nodeName")
    disk.full = False
    assert binder.bind_pending() == 1  # the undo marked every pod for another look
    store.flush()
    assert store.get_visible("pods", "default", "web")["spec"]["nodeName"] == "edge-1"
