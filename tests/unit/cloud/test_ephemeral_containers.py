"""The pods/ephemeralcontainers subresource (kubectl debug): only spec.ephemeralContainers changes through it,
ephemeral containers are validated as kube validates them and may only be added, and only the administrator may add
them (a node, and an anonymous caller, are refused)."""
from __future__ import annotations

import pytest
import pytest_asyncio

from edgeworkers.cloud.app import create_app
from tests.unit.cloud.test_identities import a_pod, bearer, node_token

pytestmark = pytest.mark.asyncio

ADMIN = {"Authorization": "Bearer admin-token"}
PODS = "/api/v1/namespaces/default/pods"
WEB = f"{PODS}/web/ephemeralcontainers"
SMP = {"Content-Type": "application/strategic-merge-patch+json"}


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings, "admin-token"), headers=ADMIN)
    assert (await client.post(PODS, json=a_pod("web", "edge-1"))).status == 201
    return client


def debugger(name: str = "debugger", **fields) -> dict:
    return {"name": name, "image": "busybox", "stdin": True, "tty": True, "targetContainerName": "c", **fields}


async def patch(client, body: dict, headers: dict | None = None):
    return await client.patch(WEB, json=body, headers={**SMP, **(headers or {})})


async def test_a_patch_adds_an_ephemeral_container_defaulted_and_nothing_else(client) -> None:
    before = await (await client.get(f"{PODS}/web")).json()
    resp = await patch(client, {"metadata": {"labels": {"sneaky": "1"}}, "spec": {
        "ephemeralContainers": [debugger()], "activeDeadlineSeconds": 5}})
    pod = await resp.json()
    assert resp.status == 200, pod
    [added] = pod["spec"]["ephemeralContainers"]
    assert added["targetContainerName"] == "c" and added["imagePullPolicy"] == "Always"
    assert added["terminationMessagePath"] == "/dev/termination-log"
    assert pod["metadata"].get("labels") == before["metadata"].get("labels")  # only the ephemeral containers change
    assert "activeDeadlineSeconds" not in pod["spec"]
    assert int(pod["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    got = await (await client.get(WEB)).json()
    assert got["kind"] == "Pod" and got["spec"]["ephemeralContainers"] == [added]


async def test_a_put_adds_one_too_and_the_main_endpoint_cannot(client) -> None:
    pod = await (await client.get(f"{PODS}/web")).json()
    pod["spec"]["ephemeralContainers"] = [debugger()]
    assert (await client.put(f"{PODS}/web", json=pod)).status == 422  # a pod update may not change them
    resp = await client.put(WEB, json=pod)
    assert resp.status == 200, await resp.json()
    assert [c["name"] for c in (await resp.json())["spec"]["ephemeralContainers"]] == ["debugger"]


@pytest.mark.parametrize(("container", "cause"), [
    (debugger(ports=[{"containerPort": 80}]), ("spec.ephemeralContainers[0].ports", "FieldValueForbidden")),
    (debugger(readinessProbe={"exec": {"command": ["true"]}}),
     ("spec.ephemeralContainers[0].readinessProbe", "FieldValueForbidden")),
    (debugger(resources={"limits": {"cpu": "1"}}), ("spec.ephemeralContainers[0].resources", "FieldValueForbidden")),
    (debugger(lifecycle={"preStop": {"exec": {"command": ["true"]}}}),
     ("spec.ephemeralContainers[0].lifecycle", "FieldValueForbidden")),
    (debugger(name="c"), ("spec.ephemeralContainers[0].name", "FieldValueDuplicate")),
    (debugger(targetContainerName="nope"), ("spec.ephemeralContainers[0].targetContainerName", "FieldValueNotFound")),
])
async def test_ephemeral_containers_are_validated_as_kube_does(client, container, cause) -> None:
    resp = await patch(client, {"spec": {"ephemeralContainers": [container]}})
    body = await resp.json()
    assert resp.status == 422, body
    assert body["reason"] == "Invalid"
    assert cause in {(c["field"], c["reason"]) for c in body["details"]["causes"]}, body


async def test_an_added_ephemeral_container_cannot_be_changed_or_removed(client) -> None:
    assert (await patch(client, {"spec": {"ephemeralContainers": [debugger()]}})).status == 200
    pod = await (await client.get(WEB)).json()
    changed = {**pod, "spec": {**pod["spec"], "ephemeralContainers": [debugger(image="alpine")]}}
    resp = await client.put(WEB, json=changed)
    body = await resp.json()
    assert resp.status == 422 and 'existing ephemeral containers "debugger" may not be changed' in body["message"]
    removed = {**pod, "spec": {**pod["spec"], "ephemeralContainers": []}}
    resp = await client.put(WEB, json=removed)
    body = await resp.json()
    assert resp.status == 422 and 'existing ephemeral containers "debugger" may not be removed' in body["message"]
    second = await patch(client, {"spec": {"ephemeralContainers": [debugger("second")]}})
    assert second.status == 200  # a strategic merge adds by name, keeping the first
    assert [c["name"] for c in (await second.json())["spec"]["ephemeralContainers"]] == ["debugger", "second"]


async def test_a_node_and_an_anonymous_caller_are_refused(client, aiohttp_client, settings) -> None:
    token = node_token(settings, "edge-1")
    denied = await patch(client, {"spec": {"ephemeralContainers": [debugger()]}}, bearer(token))
    body = await denied.json()
    assert denied.status == 403, body
    assert 'cannot patch resource "pods/ephemeralcontainers"' in body["message"]
    anonymous = await aiohttp_client(create_app(settings, "admin-token"))
    assert (await anonymous.patch(WEB, json={}, headers=SMP)).status == 401
    assert (await anonymous.get(WEB)).status == 401
    assert "ephemeralContainers" not in (await (await client.get(f"{PODS}/web")).json())["spec"]


async def test_a_mirror_pod_takes_no_ephemeral_container(client) -> None:
    mirror = a_pod("static", "edge-1")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    assert (await client.post(PODS, json=mirror)).status == 201
    resp = await client.patch(f"{PODS}/static/ephemeralcontainers", json={"spec": {"ephemeralContainers": [
        debugger()]}}, headers=SMP)
    body = await resp.json()
    assert resp.status == 422 and "static pods do not support ephemeral containers" in body["message"]
