"""SelfSubjectReview and TokenReview over HTTP: who each identity is, as kube-apiserver answers."""
from __future__ import annotations

import pytest
import pytest_asyncio

from edgeworkers.cloud.app import create_app
from tests.unit.cloud.test_identities import bearer, node_token

pytestmark = pytest.mark.asyncio

ADMIN_TOKEN = "admin-token"
ADMIN = bearer(ADMIN_TOKEN)
SELF = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
TOKENS = "/apis/authentication.k8s.io/v1/tokenreviews"
ADMIN_USER = {"username": "edgeworkers:admin", "groups": ["system:masters", "system:authenticated"]}


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, ADMIN_TOKEN))


def token_review(token: str, **spec) -> dict:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, **spec}}


async def test_self_subject_review_tells_the_administrator_who_it_is(client):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}}
    resp = await client.post(SELF, json=body, headers=ADMIN)
    review = await resp.json()
    assert resp.status == 201
    assert review["kind"] == "SelfSubjectReview" and review["apiVersion"] == "authentication.k8s.io/v1"
    assert review["metadata"]["creationTimestamp"].endswith("Z")
    assert review["status"] == {"userInfo": ADMIN_USER}


async def test_self_subject_review_tells_a_node_it_is_a_node(client, settings):
    token = node_token(settings, "edge-1")
    resp = await client.post(SELF, json={}, headers=bearer(token))
    assert resp.status == 201
    assert (await resp.json())["status"]["userInfo"] == {
        "username": "system:node:edge-1", "groups": ["system:nodes", "system:authenticated"]}


async def test_self_subject_review_in_protobuf_as_kubectl_sends_it(client):
    # runtime.Unknown{typeMeta{apiVersion, kind}, raw: SelfSubjectReview{metadata{}}}, as `kubectl auth whoami` posts
    type_meta = b"\x0a\x18authentication.k8s.io/v1\x12\x11SelfSubjectReview"
    body = b"k8s\x00" + b"\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12\x02\x0a\x00"
    resp = await client.post(SELF, data=body, headers={**ADMIN, "Content-Type": "application/vnd.kubernetes.protobuf"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["status"]["userInfo"] == ADMIN_USER


async def test_nothing_answers_an_anonymous_caller(client):
    assert (await client.post(SELF, json={})).status == 401
    assert (await client.post(TOKENS, json=token_review(ADMIN_TOKEN))).status == 401


async def test_token_review_authenticates_the_administrators_and_nodes_tokens(client, settings):
    resp = await client.post(TOKENS, json=token_review(ADMIN_TOKEN), headers=ADMIN)
    review = await resp.json()
    assert resp.status == 201
    assert review["kind"] == "TokenReview" and review["spec"] == {"token": ADMIN_TOKEN}
    assert review["status"] == {"authenticated": True, "user": ADMIN_USER,
                                "audiences": ["https://kubernetes.default.svc.cluster.local"]}
    node = await (await client.post(TOKENS, json=token_review(node_token(settings, "edge-2")), headers=ADMIN)).json()
    assert node["status"]["user"] == {"username": "system:node:edge-2",
                                      "groups": ["system:nodes", "system:authenticated"]}


async def test_token_review_of_an_unknown_token_or_another_audience_is_not_authenticated(client):
    unknown = await client.post(TOKENS, json=token_review("nope"), headers=ADMIN)
    assert unknown.status == 201 and (await unknown.json())["status"] == {"user": {}}
    other = await client.post(TOKENS, json=token_review(ADMIN_TOKEN, audiences=["vault"]), headers=ADMIN)
    assert (await other.json())["status"] == {"user": {}}
    both = await client.post(TOKENS, json=token_review(
        ADMIN_TOKEN, audiences=["vault", "https://kubernetes.default.svc.cluster.local"]), headers=ADMIN)
    assert (await both.json())["status"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]


async def test_token_review_needs_a_token(client):
    resp = await client.post(TOKENS, json={"kind": "TokenReview", "spec": {}}, headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["message"] == "token is required for TokenReview in authentication"


async def test_a_node_may_not_review_tokens(client, settings):
    token = node_token(settings, "edge-1")
    resp = await client.post(TOKENS, json=token_review(ADMIN_TOKEN), headers=bearer(token))
    body = await resp.json()
    assert resp.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('tokenreviews.authentication.k8s.io is forbidden: User "system:node:edge-1" cannot '
                               'create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster '
                               'scope')
    assert ADMIN_TOKEN not in str(body)


async def test_reviews_are_create_only(client):
    assert (await client.get(SELF, headers=ADMIN)).status == 405
    assert (await client.get(f"{TOKENS}/x", headers=ADMIN)).status == 404
    assert (await client.post("/apis/authentication.k8s.io/v1/namespaces/default/tokenreviews", json={},
                              headers=ADMIN)).status == 404
    wrong = await client.post(SELF, json={"kind": "TokenReview"}, headers=ADMIN)
    assert wrong.status == 400
