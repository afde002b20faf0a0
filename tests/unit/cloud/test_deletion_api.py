"""DELETE with a propagation policy and finalizers, through the API and its running garbage collector."""
import asyncio

import orjson
import pytest
import pytest_asyncio

from edgeworkers.cloud.app import create_app

pytestmark = pytest.mark.asyncio

AUTH = {"Authorization": "Bearer s3cret"}
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, "s3cret"), headers=AUTH)


async def create(client, path, obj):
    resp = await client.post(path, json=obj)
    body = await resp.json()
    assert resp.status == 201, body
    return body


def owned_by(owner, block=True):
    meta = owner["metadata"]
    return [{"apiVersion": "v1", "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
             "blockOwnerDeletion": block}]


async def status_of(client, path):
    return (await client.get(path)).status


async def until(predicate, timeout_s=5.0):
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            await asyncio.sleep(0.01)


async def next_event(resp):
    return orjson.loads(await asyncio.wait_for(resp.content.readline(), 5))


async def test_foreground_keeps_the_owner_until_its_blocking_dependents_are_gone(client):
    parent = await create(client, CONFIGMAPS, {"metadata": {"name": "parent"}})
    await create(client, CONFIGMAPS, {"metadata": {"name": "loose", "ownerReferences": owned_by(parent, False)}})
    await create(client, PODS, {"metadata": {"name": "child", "ownerReferences": owned_by(parent)},
                                "spec": {"nodeName": "edge-1", "containers": [{"name": "c", "image": "busybox"}]}})
    watch = await client.get(CONFIGMAPS, params={"watch": "true", "fieldSelector": "metadata.name=parent",
                                                 "resourceVersion": parent["metadata"]["resourceVersion"]})

    resp = await client.delete(f"{CONFIGMAPS}/parent", json={"kind": "DeleteOptions", "apiVersion": "v1",
                                                             "propagationPolicy": "Foreground"})
    marked = await resp.json()
    assert resp.status == 200, marked
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"] and marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    modified = await next_event(watch)
    assert modified["type"] == "MODIFIED" and modified["object"]["metadata"]["finalizers"] == ["foregroundDeletion"]

    async def child_terminating():
        return "deletionTimestamp" in (await (await client.get(f"{PODS}/child")).json())["metadata"]
    await until(child_terminating)
    await until(lambda: _gone(client, f"{CONFIGMAPS}/loose"))  # deleted too, though it does not block
    again = await client.delete(f"{CONFIGMAPS}/parent", params={"propagationPolicy": "Foreground"})
    assert again.status == 200
    assert (await again.json())["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    assert await status_of(client, f"{CONFIGMAPS}/parent") == 200

    assert (await client.delete(f"{PODS}/child", json={"gracePeriodSeconds": 0})).status == 200  # the node confirms
    await until(lambda: _gone(client, f"{CONFIGMAPS}/parent"))
    assert (await next_event(watch))["type"] == "DELETED"


async def _gone(client, path):
    return await status_of(client, path) == 404


async def test_a_finalizer_keeps_an_object_until_an_update_removes_it(client):
    await create(client, CONFIGMAPS, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    resp = await client.delete(f"{CONFIGMAPS}/held")
    body = await resp.json()
    assert resp.status == 200 and body["metadata"]["deletionTimestamp"]
    kept = await (await client.get(f"{CONFIGMAPS}/held")).json()
    assert kept["metadata"]["finalizers"] == ["example.com/hold"]
    relabelled = await client.patch(f"{CONFIGMAPS}/held", json={"metadata": {"labels": {"a": "b"}}},
                                    headers={"Content-Type": "application/merge-patch+json"})
    assert relabelled.status == 200 and await status_of(client, f"{CONFIGMAPS}/held") == 200
    more = await client.patch(f"{CONFIGMAPS}/held", json={"metadata": {"finalizers": ["example.com/hold", "b.io/x"]}},
                              headers={"Content-Type": "application/merge-patch+json"})
    assert more.status == 422
    assert (await more.json())["message"] == (
        'ConfigMap "held" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object '
        'is being deleted, found new finalizers []string{"b.io/x"}')
    stale = {**kept, "metadata": {**kept["metadata"], "finalizers": []}}
    assert (await client.put(f"{CONFIGMAPS}/held", json=stale)).status == 409  # its resourceVersion is old
    released = await client.patch(f"{CONFIGMAPS}/held", json={"metadata": {"finalizers": None}},
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert released.status == 200
    assert await status_of(client, f"{CONFIGMAPS}/held") == 404


async def test_orphan_by_query_parameter_releases_the_dependents(client):
    parent = await create(client, CONFIGMAPS, {"metadata": {"name": "parent"}})
    await create(client, CONFIGMAPS, {"metadata": {"name": "child", "ownerReferences": owned_by(parent)}})
    assert (await client.delete(f"{CONFIGMAPS}/parent", params={"propagationPolicy": "Orphan"})).status == 200
    child = await (await client.get(f"{CONFIGMAPS}/child")).json()
    assert "ownerReferences" not in child["metadata"] and await status_of(client, f"{CONFIGMAPS}/parent") == 404
