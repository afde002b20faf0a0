"""What independent clients (kr8s, lightkube, the official client) expect of kube-apiserver's defaults: trailing
slashes, Go's base64, default tolerations, aggregated discovery."""
from __future__ import annotations

import base64

import pytest
import pytest_asyncio

from edgeworkers.cloud import discovery
from edgeworkers.cloud.app import create_app
from tests.unit.cloud.test_app import AUTH, PODS, TOKEN, create, pod
from tests.unit.cloud.test_discovery import AGGREGATED_V2, KUBECTL_ACCEPT

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, TOKEN), headers=AUTH)

# The TLS example of the Kubernetes documentation wraps its base64 every 76 characters, as `base64` does.
CERT = base64.encodebytes(b"-----BEGIN CERTIFICATE-----\n" + b"x" * 200 + b"\n-----END CERTIFICATE-----\n").decode()


@pytest.mark.parametrize("path", ["/version", "/api", "/apis", "/api/v1", "/apis/coordination.k8s.io",
                                  "/apis/coordination.k8s.io/v1", "/apis/authentication.k8s.io",
                                  "/apis/authentication.k8s.io/v1", "/apis/metrics.k8s.io/v1beta1", "/openapi/v3",
                                  "/api/v1/namespaces/default/pods", "/openapi/v3/api/v1"])
async def test_every_document_answers_with_or_without_a_trailing_slash(client, path):
    plain, slashed = await client.get(path), await client.get(path + "/")
    assert plain.status == slashed.status == 200
    assert (await plain.json()) == (await slashed.json())


async def test_unknown_groups_still_answer_404_with_a_slash(client):
    assert (await client.get("/apis/policy/")).status == 404
    assert (await client.get("/apis/policy/v1/")).status == 404


async def test_aggregated_discovery_when_asked_first(client):
    for path, core in (("/api", True), ("/apis/", False)):
        resp = await client.get(path, headers={"Accept": KUBECTL_ACCEPT})
        assert resp.status == 200 and resp.headers["Content-Type"] == AGGREGATED_V2
        doc = await resp.json(content_type=None)
        assert doc == discovery.aggregated(core, "v2")
        assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    plain = await client.get("/apis", headers={"Accept": "application/json"})
    assert (await plain.json())["kind"] == "APIGroupList"


async def test_a_tls_secret_from_line_broken_base64_is_stored_without_the_line_breaks(client):
    assert "\n" in CERT.rstrip("\n")
    secret = {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": CERT, "tls.key": CERT}}
    stored = await create(client, "/api/v1/namespaces/default/secrets", secret)
    assert stored["data"]["tls.crt"] == CERT.replace("\n", "")
    got = await (await client.get("/api/v1/namespaces/default/secrets/tls")).json()
    assert base64.b64decode(got["data"]["tls.key"]) == base64.decodebytes(CERT.encode())


async def test_base64_go_cannot_decode_is_a_bad_request_naming_the_offset_not_the_value(client):
    resp = await client.post("/api/v1/namespaces/default/secrets",
                             json={"metadata": {"name": "bad"}, "data": {"k": "c2VjcmV0!"}})
    body = await resp.json()
    assert resp.status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == ('Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input '
                               'byte 8')
    assert "c2VjcmV0" not in str(body)
    configmap = await client.post("/api/v1/namespaces/default/configmaps",
                                  json={"metadata": {"name": "cm"}, "binaryData": {"b": "!!notbase64"}})
    assert configmap.status == 400
    assert (await configmap.json())["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: illegal base64 data at input byte 0')


async def test_configmap_binary_data_drops_line_breaks_on_create_and_patch(client):
    stored = await create(client, "/api/v1/namespaces/default/configmaps",
                          {"metadata": {"name": "bin"}, "binaryData": {"b": "aGVs\nbG8="}})
    assert stored["binaryData"] == {"b": "aGVsbG8="}
    merge = {"Content-Type": "application/merge-patch+json"}
    patched = await client.patch("/api/v1/namespaces/default/configmaps/bin", headers=merge,
                                 json={"binaryData": {"c": "d29y\r\nbGQ="}})
    assert (await patched.json())["binaryData"] == {"b": "aGVsbG8=", "c": "d29ybGQ="}
    bad = await client.patch("/api/v1/namespaces/default/configmaps/bin", headers=merge,
                             json={"binaryData": {"c": "d29y bGQ="}})
    assert bad.status == 400


async def test_pods_get_the_default_not_ready_and_unreachable_tolerations(client):
    created = await create(client, PODS, pod("tolerant", tolerations=[{"key": "dedicated", "operator": "Equal",
                                                                       "value": "edge", "effect": "NoSchedule"}]))
    assert created["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
    ]
    # an update that leaves them out gets them back, so it passes validation (tolerations may only be added)
    meta = {k: v for k, v in created["metadata"].items() if k != "resourceVersion"}  # the binder may write first
    replacement = {**created, "metadata": meta,
                   "spec": {**created["spec"], "tolerations": created["spec"]["tolerations"][:1]}}
    resp = await client.put(f"{PODS}/tolerant", json=replacement)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["spec"]["tolerations"] == created["spec"]["tolerations"]
