"""The API against aiohttp's test client: the Kubernetes shapes kubectl and the node rely on."""
import asyncio
import json
import ssl

import orjson
import pytest
import pytest_asyncio
import structlog
from aiohttp import web

from edgeworkers.cloud import openapi
from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.tls import issue_node_credentials, revoke_node_credentials

pytestmark = pytest.mark.asyncio

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PODS = "/api/v1/namespaces/default/pods"


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    app = create_app(settings, TOKEN, bookmark_interval=0.1)
    return await aiohttp_client(app, headers=AUTH)


def pod(name="web", image="busybox", **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}], **spec}}


def node(name="edge-1", port=None):
    status = {"conditions": [{"type": "Ready", "status": "True"}],
              "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}
    if port:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": status}


async def create(client, path, obj, code=201):
    resp = await client.post(path, json=obj)
    body = await resp.json()
    assert resp.status == code, body
    return body


async def next_event(resp):
    line = await asyncio.wait_for(resp.content.readline(), 5)
    return orjson.loads(line)


async def wait_for(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)


# -- serving --------------------------------------------------------------------------------------

async def test_requests_without_the_token_are_unauthorized(aiohttp_client, settings):
    raw = await aiohttp_client(create_app(settings, TOKEN))
    resp = await raw.get(PODS)
    assert resp.status == 401
    assert await resp.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    wrong = await raw.get(PODS, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert (await raw.get("/healthz")).status == 401  # nothing answers an anonymous caller
    assert (await raw.get("/openapi/v2")).status == 401
    for path in ("/apis/apps/v1/namespaces/default/deployments", "/apis/batch/v1/jobs",
                 "/apis/apps/v1/namespaces/default/deployments/web/scale", "/api/v1/namespaces/default/services",
                 "/apis/discovery.k8s.io/v1/endpointslices"):
        assert (await raw.get(path)).status == 401, path
    assert (await raw.get("/healthz", headers=AUTH)).status == 200


async def test_discovery_documents(client):
    assert (await (await client.get("/version")).json())["major"] == "1"
    assert (await (await client.get("/apis")).json())["kind"] == "APIGroupList"
    resources = await (await client.get("/api/v1")).json()
    assert {"pods", "pods/status", "pods/log"} <= {r["name"] for r in resources["resources"]}
    assert (await client.get("/apis/coordination.k8s.io/v1")).status == 200
    assert (await client.get("/openapi/v3")).status == 200
    v2 = await client.get("/openapi/v2")
    assert v2.content_type == "application/json" and (await v2.json())["swagger"] == "2.0"
    v2 = await client.get("/openapi/v2", headers={"Accept": openapi.V2_PROTOBUF_ASKED})
    assert v2.content_type == openapi.V2_PROTOBUF and await v2.read() == openapi.openapi_v2_protobuf()
    missing = await client.get("/openapi/v3/apis/storage.k8s.io/v1")
    assert missing.status == 404 and (await missing.json())["reason"] == "NotFound"


async def test_seeded_namespaces(client):
    body = await (await client.get("/api/v1/namespaces")).json()
    assert {"default", "kube-system", "kube-node-lease", "kube-public"} <= {
        n["metadata"]["name"] for n in body["items"]}
    assert all(n["status"]["phase"] == "Active" for n in body["items"])


async def test_oversized_bodies_are_rejected(client):
    resp = await client.post("/api/v1/namespaces/default/configmaps", data=b"x" * (3 * 1024 * 1024 + 1),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413 and (await resp.json())["reason"] == "RequestEntityTooLarge"


async def test_an_unexpected_failure_is_a_generic_500_status_with_the_detail_logged(client, monkeypatch):
    def broken(*args):
        raise RuntimeError("boom: secret-detail")

    monkeypatch.setattr("edgeworkers.cloud.handlers.printers.to_table", broken)
    with structlog.testing.capture_logs() as logs:
        resp = await client.get(PODS, headers={"Accept": TABLE})
    body = await resp.json()
    assert resp.status == 500 and body["reason"] == "InternalError"
    assert body["message"] == "Internal error occurred: an internal error occurred; the server's log has the detail"
    assert "secret-detail" not in await resp.text()
    assert any(entry["event"] == "request failed" and entry.get("exc_info") for entry in logs)


# -- CRUD -----------------------------------------------------------------------------------------

async def test_create_defaults_the_pod_and_get_returns_it(client):
    created = await create(client, PODS, pod())
    assert created["metadata"]["namespace"] == "default" and created["metadata"]["uid"]
    assert created["spec"]["restartPolicy"] == "Always" and created["status"]["phase"] == "Pending"
    got = await (await client.get(f"{PODS}/web")).json()
    assert got["metadata"]["uid"] == created["metadata"]["uid"]


async def test_list_carries_the_resource_version_and_filters_by_labels(client):
    await create(client, PODS, pod("a"))
    await create(client, PODS, pod("b"))
    body = await (await client.get(PODS, params={"labelSelector": "app=b"})).json()
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert int(body["metadata"]["resourceVersion"]) > 0
    assert [p["metadata"]["name"] for p in body["items"]] == ["b"]
    everywhere = await (await client.get("/api/v1/pods")).json()
    assert len(everywhere["items"]) == 2


@pytest.mark.parametrize("accept", ["application/json", TABLE])
async def test_a_limited_list_comes_in_pages_linked_by_continue_tokens(client, accept):
    for name in ("a", "b", "c", "d", "e"):
        await create(client, PODS, pod(name, nodeName="edge-1"))
    seen, params, pages = [], {"limit": "2"}, []
    while True:
        body = await (await client.get(PODS, params=params, headers={"Accept": accept})).json()
        pages.append(body["metadata"])
        entries = body.get("items") or [row["object"] for row in body.get("rows", [])]
        seen += [entry["metadata"]["name"] for entry in entries]
        if "continue" not in body["metadata"]:
            break
        params = {"limit": "2", "continue": body["metadata"]["continue"]}
    assert seen == ["a", "b", "c", "d", "e"]
    assert [p.get("remainingItemCount") for p in pages] == [3, 1, None]
    assert len({p["resourceVersion"] for p in pages}) == 1
    stale = await client.get(PODS, params={"continue": pages[0]["continue"], "resourceVersion": "5"})
    assert stale.status == 400
    assert (await stale.json())["message"] == "specifying resource version is not allowed when using continue"
    forged = await client.get(PODS, params={"limit": "2", "continue": "not-a-token"})
    assert forged.status == 400 and (await forged.json())["message"].startswith("invalid continue token: ")


async def test_get_and_list_as_table(client):
    await create(client, PODS, pod())
    table = await (await client.get(PODS, headers={"Accept": TABLE})).json()
    assert table["kind"] == "Table" and table["metadata"]["resourceVersion"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    one = await (await client.get(f"{PODS}/web", headers={"Accept": TABLE})).json()
    assert one["kind"] == "Table" and len(one["rows"]) == 1


async def test_a_missing_object_is_a_not_found_status(client):
    resp = await client.get(f"{PODS}/nope")
    assert resp.status == 404
    body = await resp.json()
    assert body["message"] == 'pods "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "pods"}


async def test_creating_in_a_missing_namespace_is_not_found(client):
    resp = await client.post("/api/v1/namespaces/nowhere/pods", json=pod())
    assert resp.status == 404
    assert (await resp.json())["message"] == 'namespaces "nowhere" not found'


async def test_creating_twice_is_already_exists(client):
    await create(client, PODS, pod())
    body = await create(client, PODS, pod(), code=409)
    assert body["reason"] == "AlreadyExists"


async def test_an_invalid_pod_is_422_with_causes(client):
    bad = pod()
    bad["spec"]["containers"][0]["name"] = "Web_1"
    body = await create(client, PODS, bad, code=422)
    assert body["reason"] == "Invalid" and body["details"]["kind"] == "Pod"
    assert "spec.containers[0].name" in {c["field"] for c in body["details"]["causes"]}
    assert body["message"].startswith('Pod "web" is invalid: ')


async def test_unknown_fields_under_strict_validation_are_rejected(client):
    strange = pod()
    strange["spec"]["bogus"] = 1
    resp = await client.post(PODS, json=strange, params={"fieldValidation": "Strict"})
    body = await resp.json()
    assert resp.status == 400 and body["reason"] == "BadRequest"
    assert 'strict decoding error: unknown field "spec.bogus"' in body["message"]
    lenient = await client.post(PODS, json=strange, params={"fieldValidation": "Ignore"})
    assert lenient.status == 201 and "bogus" not in (await lenient.json())["spec"]


async def test_a_value_of_the_wrong_type_is_refused_on_every_write(client):
    """Stored objects must parse with the node's models: ``value: 1`` in an env var never gets stored."""
    numeric = pod()
    numeric["spec"]["containers"][0]["env"] = [{"name": "A", "value": 1}]
    resp = await client.post(PODS, json=numeric)
    body = await resp.json()
    assert resp.status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == ('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number '
                               "into Go struct field EnvVar.spec.containers.env.value of type string")
    assert (await client.get(f"{PODS}/web")).status == 404

    await create(client, PODS, pod())
    merge = {"Content-Type": "application/merge-patch+json"}
    patched = await client.patch(f"{PODS}/web", data=b'{"metadata":{"labels":{"v":2}}}', headers=merge)
    assert patched.status == 400
    assert "ObjectMeta.metadata.labels of type string" in (await patched.json())["message"]
    applied = await client.patch(
        "/api/v1/namespaces/default/configmaps/cm", params={"fieldManager": "me"},
        data=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {port: 80}\n",
        headers={"Content-Type": "application/apply-patch+yaml"})
    assert applied.status == 400
    assert "ConfigMap.data of type string" in (await applied.json())["message"]
    stored = await (await client.get(f"{PODS}/web")).json()
    assert stored["metadata"]["labels"] == {"app": "web"}


async def test_yaml_bodies_are_read_as_json(client):
    """YAML keys that are numbers or dates become strings, as the API server's YAML-to-JSON makes them."""
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {1: one, 2024-01-02: day}\n"
    resp = await client.post("/api/v1/namespaces/default/configmaps", data=body,
                             headers={"Content-Type": "application/yaml"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["data"] == {"1": "one", "2024-01-02": "day"}
    binary = await client.post("/api/v1/namespaces/default/configmaps", data=body.replace(b"one", b"!!binary aGk="),
                               headers={"Content-Type": "application/yaml"})
    assert binary.status == 400 and "error converting YAML to JSON" in (await binary.json())["message"]


async def test_a_name_mismatch_between_url_and_body_is_bad_request(client):
    created = await create(client, PODS, pod())
    created["metadata"]["name"] = "other"
    resp = await client.put(f"{PODS}/web", json=created)
    assert resp.status == 400
    assert "does not match the name on the URL" in (await resp.json())["message"]


async def test_an_update_with_a_stale_resource_version_is_a_conflict(client):
    created = await create(client, PODS, pod(nodeName="edge-1"))  # bound: the scheduler leaves it alone
    first = json.loads(json.dumps(created))
    first["metadata"]["labels"]["v"] = "1"
    resp = await client.put(f"{PODS}/web", json=first)
    assert resp.status == 200
    assert (await resp.json())["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    created["metadata"]["labels"]["v"] = "2"
    stale = await client.put(f"{PODS}/web", json=created)
    body = await stale.json()
    assert stale.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on pods "web": the object has been modified; '
                               "please apply your changes to the latest version and try again")


async def test_the_main_endpoint_ignores_status_and_status_ignores_the_rest(client):
    created = await create(client, PODS, pod(nodeName="edge-1"))
    created["status"] = {"phase": "Running"}
    created["metadata"]["labels"]["x"] = "y"
    updated = await (await client.put(f"{PODS}/web", json=created)).json()
    assert updated["status"]["phase"] == "Pending" and updated["metadata"]["labels"]["x"] == "y"
    resp = await client.patch(f"{PODS}/web/status", data=orjson.dumps({"status": {"phase": "Running"},
                                                                       "metadata": {"labels": {"z": "1"}}}),
                              headers={"Content-Type": "application/merge-patch+json"})
    patched = await resp.json()
    assert resp.status == 200 and patched["status"]["phase"] == "Running" and "z" not in patched["metadata"]["labels"]


@pytest.mark.parametrize("path", [f"{PODS}/web", f"{PODS}/web/status"])
async def test_an_update_carrying_another_uid_fails_its_precondition(client, path):
    """As the API server: a PUT's uid is a precondition, so a write meant for a deleted namesake never lands."""
    created = await create(client, PODS, pod(nodeName="edge-1"))
    uid = created["metadata"]["uid"]
    stale = json.loads(json.dumps(created))
    stale["metadata"]["uid"] = "0b7d-old"
    stale["metadata"]["labels"]["v"] = "2"
    stale["status"] = {"phase": "Running"}
    resp = await client.put(path, json=stale)
    body = await resp.json()
    assert resp.status == 409 and body["reason"] == "Conflict", body
    assert body["message"] == (f'Operation cannot be fulfilled on pods "web": Precondition failed: '
                               f"UID in precondition: 0b7d-old, UID in object meta: {uid}")
    stored = await (await client.get(f"{PODS}/web")).json()
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    stale["metadata"]["uid"] = uid
    assert (await client.put(path, json=stale)).status == 200


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/strategic-merge-patch+json"])
async def test_a_status_patch_for_a_recreated_pod_is_refused(client, content_type):
    """A node's status patch names the pod's uid: on a namesake made since, the uid would change, which
    validation refuses (422, as the API server: a patch has no precondition, the uid is immutable)."""
    old = await create(client, PODS, pod())
    assert (await client.delete(f"{PODS}/web")).status == 200
    new = await create(client, PODS, pod(nodeName="edge-1"))
    headers = {"Content-Type": content_type}
    patch = {"metadata": {"uid": old["metadata"]["uid"]}, "status": {"phase": "Running"}}
    resp = await client.patch(f"{PODS}/web/status", data=orjson.dumps(patch), headers=headers)
    body = await resp.json()
    assert resp.status == 422 and body["reason"] == "Invalid", body
    assert body["message"] == (f'Pod "web" is invalid: metadata.uid: Invalid value: "{old["metadata"]["uid"]}": '
                               "field is immutable")
    assert (await (await client.get(f"{PODS}/web")).json())["status"]["phase"] == "Pending"
    patch["metadata"]["uid"] = new["metadata"]["uid"]
    resp = await client.patch(f"{PODS}/web/status", data=orjson.dumps(patch), headers=headers)
    assert resp.status == 200 and (await resp.json())["status"]["phase"] == "Running"


async def test_a_write_that_changes_nothing_keeps_the_resource_version(client):
    created = await create(client, PODS, pod(nodeName="edge-1"))
    resp = await client.put(f"{PODS}/web", json=created)
    assert resp.status == 200
    assert (await resp.json())["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_merge_patch_changes_labels(client):
    await create(client, PODS, pod())
    resp = await client.patch(f"{PODS}/web", data=orjson.dumps({"metadata": {"labels": {"tier": "front"}}}),
                              headers={"Content-Type": "application/merge-patch+json"})
    body = await resp.json()
    assert resp.status == 200 and body["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert body["spec"]["containers"][0]["command"] == ["sleep", "3600"]


async def test_strategic_merge_patch_keeps_unchanged_container_fields(client):
    await create(client, PODS, pod())
    patch = {"spec": {"$setElementOrder/containers": [{"name": "c"}],
                      "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    resp = await client.patch(f"{PODS}/web", data=orjson.dumps(patch),
                              headers={"Content-Type": "application/strategic-merge-patch+json"})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert body["spec"]["containers"][0]["command"] == ["sleep", "3600"]


async def test_server_side_apply_creates_then_updates(client):
    headers = {"Content-Type": "application/apply-patch+yaml"}
    params = {"fieldManager": "kubectl", "fieldValidation": "Strict", "force": "false"}
    resp = await client.patch(f"{PODS}/web", data=orjson.dumps(pod()), headers=headers, params=params)
    assert resp.status == 201, await resp.text()
    changed = pod()
    changed["metadata"]["labels"]["v"] = "2"
    resp = await client.patch(f"{PODS}/web", data=orjson.dumps(changed), headers=headers, params=params)
    body = await resp.json()
    assert resp.status == 200 and body["metadata"]["labels"]["v"] == "2"
    assert any(m["manager"] == "kubectl" for m in body["metadata"]["managedFields"])


async def test_an_applied_list_item_without_its_merge_key_is_a_bad_request(client):
    await create(client, PODS, pod())
    nameless = pod()
    del nameless["spec"]["containers"][0]["name"]
    resp = await client.patch(f"{PODS}/web", data=orjson.dumps(nameless), params={"fieldManager": "kubectl"},
                              headers={"Content-Type": "application/apply-patch+yaml"})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["message"] == ('map: {"command": ["sleep", "3600"], "image": "busybox"} does not contain declared '
                               "merge key: name")


async def test_patch_of_an_unknown_type_is_unsupported_media_type(client):
    await create(client, PODS, pod())
    resp = await client.patch(f"{PODS}/web", data=b"{}", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and (await resp.json())["reason"] == "UnsupportedMediaType"


async def test_exec_into_a_pod_not_bound_to_a_node_is_answered_with_a_clear_status(client):
    await create(client, PODS, pod())
    resp = await client.post(f"{PODS}/web/exec", params={"command": "sh"})  # (the rest: test_streams_proxy.py)
    body = await resp.json()
    assert resp.status == 400 and body["message"] == "pod web does not have a host assigned"


async def test_a_dry_run_validates_but_stores_nothing(client):
    resp = await client.post(PODS, json=pod(), params={"dryRun": "All"})
    assert resp.status == 201 and (await resp.json())["spec"]["restartPolicy"] == "Always"
    assert (await client.get(f"{PODS}/web")).status == 404
    await create(client, PODS, pod(nodeName="edge-1"))
    assert (await client.delete(f"{PODS}/web", params={"dryRun": "All"})).status == 200
    assert "deletionTimestamp" not in (await (await client.get(f"{PODS}/web")).json())["metadata"]


# -- delete ---------------------------------------------------------------------------------------

async def test_deleting_an_unbound_pod_removes_it_at_once(client):
    await create(client, PODS, pod())
    resp = await client.delete(f"{PODS}/web", json={"propagationPolicy": "Background"})
    assert resp.status == 200 and (await resp.json())["metadata"]["name"] == "web"
    assert (await client.get(f"{PODS}/web")).status == 404


async def test_deleting_a_bound_pod_waits_for_the_node_to_confirm(client):
    await create(client, PODS, pod(nodeName="edge-1", terminationGracePeriodSeconds=20))
    resp = await client.delete(f"{PODS}/web", json={"propagationPolicy": "Background"})
    body = await resp.json()
    assert resp.status == 200
    assert body["metadata"]["deletionGracePeriodSeconds"] == 20 and body["metadata"]["deletionTimestamp"]
    terminating = await (await client.get(f"{PODS}/web")).json()
    assert terminating["metadata"]["deletionTimestamp"] == body["metadata"]["deletionTimestamp"]
    watch = await client.get(PODS, params={"watch": "true",
                                           "resourceVersion": body["metadata"]["resourceVersion"]})
    confirm = await client.delete(f"{PODS}/web", json={"gracePeriodSeconds": 0})
    assert confirm.status == 200
    assert (await client.get(f"{PODS}/web")).status == 404
    event = await next_event(watch)
    assert event["type"] == "DELETED" and event["object"]["metadata"]["name"] == "web"
    watch.close()


async def test_a_delete_with_a_stale_uid_precondition_is_a_conflict(client):
    await create(client, PODS, pod())
    resp = await client.delete(f"{PODS}/web", json={"preconditions": {"uid": "other"}})
    assert resp.status == 409


async def test_deleting_a_namespace_removes_its_objects(client):
    await create(client, "/api/v1/namespaces", {"metadata": {"name": "team"}})
    await create(client, "/api/v1/namespaces/team/configmaps", {"metadata": {"name": "cm"}, "data": {"a": "b"}})
    assert (await client.delete("/api/v1/namespaces/team")).status == 200
    assert (await client.get("/api/v1/namespaces/team/configmaps/cm")).status == 404
    assert (await client.delete("/api/v1/namespaces/default")).status == 403


# -- watch ----------------------------------------------------------------------------------------

async def test_a_watch_from_zero_starts_with_synthetic_added_events(client):
    await create(client, PODS, pod())
    resp = await client.get(PODS, params={"watch": "true", "resourceVersion": "0",
                                          "fieldSelector": "metadata.name=web"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/json")
    first = await next_event(resp)
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "web"
    await client.patch(f"{PODS}/web", data=orjson.dumps({"metadata": {"labels": {"x": "1"}}}),
                       headers={"Content-Type": "application/merge-patch+json"})
    second = await next_event(resp)
    assert second["type"] == "MODIFIED" and second["object"]["metadata"]["labels"]["x"] == "1"
    resp.close()


async def test_a_watch_from_a_resource_version_sends_only_later_events(client):
    first = await create(client, PODS, pod("a", nodeName="edge-1"))
    await create(client, PODS, pod("b", nodeName="edge-1"))
    resp = await client.get(PODS, params={"watch": "1", "resourceVersion": first["metadata"]["resourceVersion"]})
    event = await next_event(resp)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")
    resp.close()


async def test_a_too_old_resource_version_is_gone(client):
    resp = await client.get(PODS, params={"watch": "true", "resourceVersion": "5"})
    assert resp.status == 200  # as the API server: the error travels as the stream's only event
    event = await next_event(resp)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith("too old resource version: 5 (")
    assert await resp.read() == b""


async def test_a_watch_ends_at_its_timeout_and_sends_bookmarks(client):
    resp = await client.get(PODS, params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "1",
                                          "allowWatchBookmarks": "true"})
    event = await next_event(resp)
    assert event["type"] == "BOOKMARK" and set(event["object"]["metadata"]) == {"resourceVersion"}
    async with asyncio.timeout(3):
        rest = await resp.read()
    assert all(orjson.loads(line)["type"] == "BOOKMARK" for line in rest.splitlines())


async def test_a_table_watch_sends_one_row_tables(client):
    resp = await client.get(PODS, params={"watch": "true", "resourceVersion": "0"}, headers={"Accept": TABLE})
    await create(client, PODS, pod())
    event = await next_event(resp)
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table" and len(event["object"]["rows"]) == 1
    resp.close()


async def test_a_bad_selector_is_a_bad_request(client):
    resp = await client.get(PODS, params={"fieldSelector": "nonsense"})
    assert resp.status == 400 and (await resp.json())["reason"] == "BadRequest"


@pytest.mark.parametrize("watch", ["false", "true"])
async def test_a_field_the_resource_cannot_be_selected_by_is_a_bad_request(client, watch):
    """As the API server: not an empty list (which reads as "no such pods") but a 400 naming the field."""
    await create(client, PODS, pod())
    resp = await client.get(PODS, params={"fieldSelector": "spec.foo=1", "watch": watch})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["message"] == "field label not supported: spec.foo"


# -- scheduling -----------------------------------------------------------------------------------

async def test_an_unschedulable_pod_waits_and_binds_when_a_node_is_ready(client):
    await create(client, PODS, pod(nodeSelector={"zone": "x"}))

    async def condition():
        got = await (await client.get(f"{PODS}/web")).json()
        return next((c for c in got["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)

    async def unschedulable():
        return (c := await condition()) is not None and c["reason"] == "Unschedulable"
    await wait_for(unschedulable)
    assert (await condition())["message"] == "no nodes available to schedule pods"
    labelled = node()
    labelled["metadata"]["labels"] = {"zone": "x"}
    await create(client, "/api/v1/nodes", labelled)

    async def bound():
        return (await (await client.get(f"{PODS}/web")).json())["spec"].get("nodeName") == "edge-1"
    await wait_for(bound)
    assert (await condition())["status"] == "True"


async def test_binding_subresource_assigns_the_node_once(client):
    await create(client, PODS, pod(nodeSelector={"never": "matches"}))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "edge-9"}}
    resp = await client.post(f"{PODS}/web/binding", json=binding)
    assert resp.status == 201 and (await resp.json())["status"] == "Success"
    assert (await (await client.get(f"{PODS}/web")).json())["spec"]["nodeName"] == "edge-9"
    again = await client.post(f"{PODS}/web/binding", json=binding)
    assert again.status == 409


# -- logs -----------------------------------------------------------------------------------------

def node_tls(settings, node="edge-1"):
    """A node's endpoint TLS: its certificate from issue-node-credentials; the cloud's client certificate required."""
    directory = issue_node_credentials(settings, node).parent
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(directory / "ca.crt"))
    ctx.load_cert_chain(directory / "node.crt", directory / "node.key")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def logs_endpoint(aiohttp_server, settings, container_logs, node_name="edge-1"):
    """A node's endpoint serving ``container_logs`` with ``node_name``'s certificate."""
    fake_node = web.Application()
    fake_node.router.add_get("/containerLogs/{ns}/{pod}/{container}", container_logs)
    return await aiohttp_server(fake_node, ssl=node_tls(settings, node_name))


async def test_logs_are_proxied_to_the_nodes_endpoint(client, aiohttp_server, settings):
    seen = {}

    async def container_logs(request):
        seen.update(path=request.path, query=dict(request.query))
        return web.Response(text="hello\nworld\n")

    server = await logs_endpoint(aiohttp_server, settings, container_logs)
    await create(client, "/api/v1/nodes", node(port=server.port))
    await create(client, PODS, pod(nodeName="edge-1"))
    resp = await client.get(f"{PODS}/web/log", params={"container": "c", "tailLines": "2"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert await resp.text() == "hello\nworld\n"
    assert seen == {"path": "/containerLogs/default/web/c", "query": {"tailLines": "2"}}


async def test_logs_are_not_read_from_an_endpoint_with_another_nodes_certificate(client, aiohttp_server, settings):
    async def container_logs(request):
        return web.Response(text="not yours\n")

    server = await logs_endpoint(aiohttp_server, settings, container_logs, "edge-2")
    await create(client, "/api/v1/nodes", node(port=server.port))
    await create(client, PODS, pod(nodeName="edge-1"))
    resp = await client.get(f"{PODS}/web/log", params={"container": "c"})
    assert resp.status == 500 and "not yours" not in await resp.text()


async def test_logs_are_not_read_from_a_revoked_or_replaced_certificate(client, aiohttp_server, settings):
    async def container_logs(request):
        return web.Response(text="hello\n")

    server = await logs_endpoint(aiohttp_server, settings, container_logs)
    await create(client, "/api/v1/nodes", node(port=server.port))
    await create(client, PODS, pod(nodeName="edge-1"))
    assert await (await client.get(f"{PODS}/web/log")).text() == "hello\n"
    issue_node_credentials(settings, "edge-1")  # reissued: the certificate the endpoint still shows is replaced
    replaced = await client.get(f"{PODS}/web/log")
    assert replaced.status == 500 and "serving certificate is revoked, replaced or unknown" in await replaced.text()
    await server.close()
    server = await logs_endpoint(aiohttp_server, settings, container_logs)
    await client.patch("/api/v1/nodes/edge-1/status", json=node(port=server.port),
                       headers={"Content-Type": "application/merge-patch+json"})
    assert (await client.get(f"{PODS}/web/log")).status == 200
    assert revoke_node_credentials(settings, "edge-1")
    revoked = await client.get(f"{PODS}/web/log")  # from the next connection on
    assert revoked.status == 500 and "hello" not in await revoked.text()


async def test_followed_logs_stream_until_the_node_ends_them(client, aiohttp_server, settings):
    release = asyncio.Event()

    async def container_logs(request):
        assert request.query["follow"] == "true"
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"one\n")
        await release.wait()
        await response.write(b"two\n")
        await response.write_eof()
        return response

    server = await logs_endpoint(aiohttp_server, settings, container_logs)
    await create(client, "/api/v1/nodes", node(port=server.port))
    await create(client, PODS, pod(nodeName="edge-1"))
    resp = await client.get(f"{PODS}/web/log", params={"follow": "true"})
    assert await asyncio.wait_for(resp.content.readline(), 5) == b"one\n"
    release.set()
    assert await asyncio.wait_for(resp.content.read(), 5) == b"two\n"


async def test_node_errors_come_back_as_statuses(client, aiohttp_server, settings):
    async def container_logs(request):
        return web.Response(status=404, text='container "c" in pod "web" is not available')

    server = await logs_endpoint(aiohttp_server, settings, container_logs)
    await create(client, "/api/v1/nodes", node(port=server.port))
    await create(client, PODS, pod(nodeName="edge-1"))
    resp = await client.get(f"{PODS}/web/log", params={"container": "c"})
    body = await resp.json()
    assert resp.status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'container "c" in pod "web" is not available'
    wrong = await client.get(f"{PODS}/web/log", params={"container": "nope"})
    assert wrong.status == 400 and (await wrong.json())["message"] == "container nope is not valid for pod web"


async def test_logs_of_an_unscheduled_pod_say_it_is_waiting(client):
    await create(client, PODS, pod(nodeSelector={"never": "matches"}))
    resp = await client.get(f"{PODS}/web/log")
    body = await resp.json()
    assert resp.status == 400
    assert body["message"] == 'container "c" in pod "web" is waiting to start: ContainerCreating'


async def test_logs_from_an_unreachable_node_are_an_internal_error(client, unused_tcp_port):
    await create(client, "/api/v1/nodes", node(port=unused_tcp_port))
    await create(client, PODS, pod(nodeName="edge-1"))
    resp = await client.get(f"{PODS}/web/log")
    assert resp.status == 500 and (await resp.json())["reason"] == "InternalError"


# -- other resources ------------------------------------------------------------------------------

async def test_leases_are_served_in_the_coordination_group(client):
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "edge-1"},
             "spec": {"holderIdentity": "edge-1", "leaseDurationSeconds": 40}}
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    created = await create(client, path, lease)
    assert created["apiVersion"] == "coordination.k8s.io/v1" and created["metadata"]["namespace"] == "kube-node-lease"
    missing = await client.get(f"{path}/nope")
    assert missing.status == 404
    assert (await missing.json())["message"] == 'leases.coordination.k8s.io "nope" not found'


async def test_deleting_a_node_deletes_the_lease_it_owns(client):
    edge = await create(client, "/api/v1/nodes", node())
    owner = {"apiVersion": "v1", "kind": "Node", "name": "edge-1", "uid": edge["metadata"]["uid"]}
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    await create(client, path, {"metadata": {"name": "edge-1", "ownerReferences": [owner]},
                                "spec": {"holderIdentity": "edge-1"}})
    bogus = await client.delete("/api/v1/nodes/edge-1", json={"propagationPolicy": "Sometimes"})
    assert bogus.status == 422
    assert (await bogus.json())["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sometimes": '
        'supported values: "Foreground", "Background", "Orphan"')
    resp = await client.delete("/api/v1/nodes/edge-1", json={"propagationPolicy": "Background"})
    assert resp.status == 200
    assert (await client.get(f"{path}/edge-1")).status == 404


async def test_a_lease_whose_node_went_while_the_server_was_down_goes_at_start(aiohttp_client, settings):
    store = Store(settings.cloud_data_dir / "objects.db")
    owner = store.create("nodes", {"metadata": {"name": "edge-1"}}).object["metadata"]
    store.create("leases", {"metadata": {"name": "edge-1", "namespace": "kube-node-lease", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Node", "name": "edge-1", "uid": owner["uid"]}]}, "spec": {}})
    store.delete("nodes", "", "edge-1")
    store.close()
    client = await aiohttp_client(create_app(settings, TOKEN), headers=AUTH)
    resp = await client.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/edge-1")
    assert resp.status == 404


async def test_events_are_listed_by_involved_object(client):
    events = "/api/v1/namespaces/default/events"
    for name, pod_name in (("e1", "web"), ("e2", "db")):
        await create(client, events, {
            "metadata": {"name": name}, "reason": "Started", "message": "Started container", "type": "Normal",
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": pod_name, "uid": "u-" + pod_name}})
    selector = "involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u-web"
    body = await (await client.get(events, params={"fieldSelector": selector, "limit": "500"})).json()
    assert body["kind"] == "EventList" and [e["metadata"]["name"] for e in body["items"]] == ["e1"]


async def test_configmaps_from_kubectl_create_arrive_as_protobuf(client):
    def field(number, payload):
        return bytes([number << 3 | 2, len(payload)]) + payload

    def entry(key, value):
        return field(1, key) + field(2, value)

    configmap = field(1, field(1, b"cfg")) + field(2, entry(b"mode", b"edge"))
    body = b"k8s\x00" + field(1, field(1, b"v1") + field(2, b"ConfigMap")) + field(2, configmap)
    resp = await client.post("/api/v1/namespaces/default/configmaps", data=body,
                             headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    created = await resp.json()
    assert resp.status == 201 and resp.headers["Content-Type"].startswith("application/json")
    assert created["metadata"]["namespace"] == "default" and created["data"] == {"mode": "edge"}
