"""Node identities over HTTP: a node's token, its limits in Forbidden Status shape, rotation and revocation at once."""
from __future__ import annotations

import stat

import pytest
import pytest_asyncio

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.auth import NodeTokens
from edgeworkers.cloud.tls import issue_node_credentials, node_credentials_dir, revoke_node_credentials
from edgeworkers.kubeclient import ApiClient, load_kubeconfig
from tests.credentials import kubeconfig_token

ADMIN = {"Authorization": "Bearer admin-token"}
PODS = "/api/v1/namespaces/default/pods"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def node_token(settings, node: str) -> str:
    return kubeconfig_token(issue_node_credentials(settings, node))


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, "admin-token"))


def a_pod(name: str, node: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "b"}],
                                                 **spec}}


@pytest.mark.asyncio
async def test_a_node_token_reads_pods_but_not_a_secret_its_pods_do_not_reference(client, settings) -> None:
    token = node_token(settings, "edge-1")
    for body in ({"metadata": {"name": "theirs"}, "stringData": {"k": "v"}},
                 {"metadata": {"name": "mine"}, "stringData": {"k": "v"}}):
        assert (await client.post("/api/v1/namespaces/default/secrets", json=body, headers=ADMIN)).status == 201
    pod = a_pod("web", "edge-1", volumes=[{"name": "s", "secret": {"secretName": "mine"}}])
    assert (await client.post(PODS, json=pod, headers=ADMIN)).status == 201
    assert (await client.get(PODS, headers=bearer(token))).status == 200
    assert (await client.get("/api/v1/namespaces/default/secrets/mine", headers=bearer(token))).status == 200
    denied = await client.get("/api/v1/namespaces/default/secrets/theirs", headers=bearer(token))
    assert denied.status == 403
    body = await denied.json()
    assert body["reason"] == "Forbidden" and body["details"] == {"name": "theirs", "kind": "secrets"}
    assert body["message"].startswith('secrets "theirs" is forbidden: User "system:node:edge-1" cannot get resource '
                                      '"secrets" in API group "" in the namespace "default": ')


@pytest.mark.asyncio
async def test_a_node_changes_only_its_own_node_and_pods(client, settings) -> None:
    token = node_token(settings, "edge-1")
    for name in ("edge-1", "edge-2"):
        resp = await client.post("/api/v1/nodes", json={"metadata": {"name": name}}, headers=bearer(token))
        assert resp.status == (201 if name == "edge-1" else 403), await resp.text()
    assert (await client.post("/api/v1/nodes", json={"metadata": {"name": "edge-2"}}, headers=ADMIN)).status == 201
    merge = {"Content-Type": "application/merge-patch+json"}
    status_patch = {"status": {"phase": "Running"}}
    assert (await client.patch("/api/v1/nodes/edge-2/status", json={"status": {}},
                                headers={**bearer(token), **merge})).status == 403
    for name, node in (("mine", "edge-1"), ("theirs", "edge-2")):
        assert (await client.post(PODS, json=a_pod(name, node), headers=ADMIN)).status == 201
    assert (await client.patch(f"{PODS}/mine/status", json=status_patch, headers={**bearer(token), **merge})).status == 200
    assert (await client.patch(f"{PODS}/theirs/status", json=status_patch,
                               headers={**bearer(token), **merge})).status == 403
    assert (await client.patch(f"{PODS}/mine", json={"metadata": {"labels": {"a": "b"}}},
                               headers={**bearer(token), **merge})).status == 403
    assert (await client.delete(f"{PODS}/theirs", headers=bearer(token))).status == 403
    assert (await client.delete(f"{PODS}/mine", headers=bearer(token))).status == 200
    plain = a_pod("sneaky", "edge-1")
    assert (await client.post(PODS, json=plain, headers=bearer(token))).status == 403
    plain["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "h"}
    assert (await client.post(PODS, json=plain, headers=bearer(token))).status == 201


@pytest.mark.asyncio
async def test_rotation_and_revocation_answer_401_at_once(client, settings) -> None:
    old = node_token(settings, "edge-1")
    assert (await client.get(PODS, headers=bearer(old))).status == 200
    new = node_token(settings, "edge-1")  # rotate
    assert (await client.get(PODS, headers=bearer(old))).status == 401
    assert (await client.get(PODS, headers=bearer(new))).status == 200
    assert revoke_node_credentials(settings, "edge-1")
    assert (await client.get(PODS, headers=bearer(new))).status == 401
    assert not revoke_node_credentials(settings, "edge-1")


@pytest.mark.asyncio
async def test_anonymous_and_unknown_callers_get_401_everywhere(client) -> None:
    for path in ("/healthz", "/version", "/api", "/apis", "/openapi/v3", PODS, "/nope"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers=bearer("x.y"))).status == 401, path
        assert (await client.get(path, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})).status == 401, path


def test_credential_files_are_0600_in_0700_directories(settings) -> None:
    kubeconfig = issue_node_credentials(settings, "edge-1")
    node_dir = node_credentials_dir(settings, "edge-1")
    assert kubeconfig.parent == node_dir
    for directory in (settings.cloud_data_dir, node_dir.parent, node_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for name in ("token", "ca.key", "server.key", "kubelet-client.key", "node-tokens.json"):
        assert stat.S_IMODE((settings.cloud_data_dir / name).stat().st_mode) == 0o600, name
    for name in ("kubeconfig", "node.key"):
        assert stat.S_IMODE((node_dir / name).stat().st_mode) == 0o600, name


def test_the_registry_keeps_no_token_in_clear(settings) -> None:
    token = node_token(settings, "edge-1")
    assert token not in (settings.cloud_data_dir / "node-tokens.json").read_text()
    assert NodeTokens(settings.cloud_data_dir).lookup(token) == "edge-1"
    assert NodeTokens(settings.cloud_data_dir).nodes() == ["edge-1"]


def test_the_node_kubeconfig_names_its_ca_file_so_its_client_copies_nothing(settings) -> None:
    """A client of the node's kubeconfig uses ``ca.crt`` in place: a SIGKILLed bridge leaves no CA copy in /tmp."""
    kubeconfig = issue_node_credentials(settings, "edge-1")
    access = load_kubeconfig(kubeconfig.read_text(), base_dir=kubeconfig.parent)
    assert access.ca_file == str(kubeconfig.parent / "ca.crt") and access.ca_data is None
    api = ApiClient(access)
    try:
        assert api._verify == access.ca_file and not api._memfds
    finally:
        api.close()
