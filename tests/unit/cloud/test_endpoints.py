"""The endpoints and endpointslice controllers: what a Service's endpoints are (pure), and the controller keeping them
through the API as pods come, turn Ready and go."""
import asyncio

import pytest
import pytest_asyncio

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.endpoints import (
    CONTROLLER_NAME,
    MANAGED_BY,
    SERVICE_NAME,
    endpoints_for,
    find_port,
    slice_body,
    slice_groups,
)
from edgeworkers.cloud.services import default_service

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NS = "/api/v1/namespaces/default"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def service(name="web", **spec):
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    spec.setdefault("selector", {"app": "web"})
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default", "uid": "svc-uid",
                                                              "labels": {"tier": "front"}}, "spec": spec}
    return default_service(svc)


def pod(name, ip=None, ready=True, labels=None, node="edge-1", deleting=False, phase="Running", port=8080):
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    container = {"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": port}]}
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [container]}, "status": status}


# -- pure ------------------------------------------------------------------------------------------------------------

def test_find_port_resolves_a_named_target_port_on_the_pod():
    assert find_port(pod("a"), {"targetPort": "http", "protocol": "TCP"}) == 8080
    assert find_port(pod("a"), {"targetPort": "http", "protocol": "UDP"}) is None
    assert find_port(pod("a"), {"targetPort": 9000}) == 9000


def test_endpoints_hold_ready_and_not_ready_addresses_with_the_resolved_ports():
    pods = [pod("b", "172.17.0.3"), pod("a", "172.17.0.2"), pod("c", "172.17.0.4", ready=False),
            pod("d"),  # no IP yet
            pod("e", "172.17.0.5", deleting=True), pod("f", "172.17.0.6", phase="Succeeded")]
    body = endpoints_for(service(), pods)
    assert body["metadata"] == {"name": "web", "namespace": "default", "labels": {"tier": "front"}}
    assert body["subsets"] == [{
        "addresses": [
            {"ip": "172.17.0.2", "nodeName": "edge-1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}},
            {"ip": "172.17.0.3", "nodeName": "edge-1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}},
        ],
        "notReadyAddresses": [
            {"ip": "172.17.0.4", "nodeName": "edge-1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "c", "uid": "uid-c"}},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]


def test_pods_serving_different_ports_get_subsets_of_their_own_and_no_pods_no_subsets():
    body = endpoints_for(service(), [pod("a", "10.1.0.1", port=8080), pod("b", "10.1.0.2", port=9090)])
    assert [(s["addresses"][0]["ip"], s["ports"][0]["port"]) for s in body["subsets"]] == [("10.1.0.1", 8080),
                                                                                           ("10.1.0.2", 9090)]
    assert "subsets" not in endpoints_for(service(), [])
    headless = endpoints_for(service(clusterIP="None", ports=[]), [pod("a", "10.1.0.1")])
    assert headless["metadata"]["labels"] == {"tier": "front", "service.kubernetes.io/headless": ""}
    assert headless["subsets"] == [{"addresses": [{"ip": "10.1.0.1", "nodeName": "edge-1", "targetRef": {
        "kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}}]}]


def test_slices_carry_conditions_terminating_pods_and_kubes_labels():
    svc = service()
    groups = slice_groups(svc, [pod("a", "10.1.0.1"), pod("b", "10.1.0.2", ready=False),
                                pod("c", "10.1.0.3", deleting=True)])
    assert len(groups) == 1
    body = slice_body(svc, *groups[0])
    assert body["addressType"] == "IPv4"
    assert body["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [(e["addresses"], e["conditions"]) for e in body["endpoints"]] == [
        (["10.1.0.1"], {"ready": True, "serving": True, "terminating": False}),
        (["10.1.0.2"], {"ready": False, "serving": False, "terminating": False}),
        (["10.1.0.3"], {"ready": False, "serving": True, "terminating": True}),
    ]
    assert body["endpoints"][0]["nodeName"] == "edge-1"
    assert body["metadata"]["generateName"] == "web-"
    assert body["metadata"]["labels"] == {"tier": "front", SERVICE_NAME: "web", MANAGED_BY: CONTROLLER_NAME}
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                    "uid": "svc-uid", "controller": True, "blockOwnerDeletion": True}]


def test_a_slice_holds_at_most_100_endpoints_and_an_empty_service_a_placeholder():
    groups = slice_groups(service(), [pod(f"p{i:03}", f"10.2.{i // 250}.{i % 250 + 1}") for i in range(250)])
    assert [len(endpoints) for _family, _ports, endpoints in groups] == [100, 100, 50]
    assert slice_groups(service(), []) == [("IPv4", (), [])]


# -- the controller through the API ------------------------------------------------------------------------------------

@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, TOKEN), headers=AUTH)


async def eventually(check, timeout=5.0):
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.02)


async def write(client, method, path, body, code):
    resp = await client.request(method, path, json=body)
    payload = await resp.json()
    assert resp.status == code, payload
    return payload


async def run_pod(client, name, ip, ready=True, labels=None):
    """A pod as a node reports it: created, then its status posted."""
    body = pod(name, labels=labels)
    await write(client, "POST", f"{NS}/pods", {"apiVersion": "v1", "kind": "Pod",
                                                        "metadata": {"name": name, "labels": body["metadata"]["labels"]},
                                                        "spec": {"containers": body["spec"]["containers"]}}, 201)
    return await set_status(client, name, pod(name, ip, ready)["status"])


async def set_status(client, name, status):
    resp = await client.patch(f"{NS}/pods/{name}/status", json={"status": status},
                              headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status == 200, await resp.json()
    return await resp.json()


async def endpoints_ips(client, name="web"):
    resp = await client.get(f"{NS}/endpoints/{name}")
    if resp.status != 200:
        return None
    body = await resp.json()
    return {a["ip"] for s in body.get("subsets") or [] for a in s.get("addresses") or []}


@pytest.mark.asyncio
async def test_the_controller_keeps_endpoints_and_slices_as_pods_come_and_go(client):
    await run_pod(client, "a", "172.17.0.2")
    await run_pod(client, "b", "172.17.0.3", ready=False)
    await run_pod(client, "other", "172.17.0.9", labels={"app": "other"})
    svc = service()
    svc["metadata"].pop("uid")
    await write(client, "POST", f"{NS}/services", svc, 201)

    assert await eventually(lambda: _equals(endpoints_ips(client), {"172.17.0.2"}))
    slices = await eventually(lambda: _slices(client))
    (only,) = slices
    assert {e["addresses"][0]: e["conditions"]["ready"] for e in only["endpoints"]} == {"172.17.0.2": True,
                                                                                        "172.17.0.3": False}

    await set_status(client, "b", pod("b", "172.17.0.3")["status"])
    assert await eventually(lambda: _equals(endpoints_ips(client), {"172.17.0.2", "172.17.0.3"}))

    await write(client, "DELETE", f"{NS}/pods/a", None, 200)  # not bound: gone at once
    assert await eventually(lambda: _equals(endpoints_ips(client), {"172.17.0.3"}))
    (only,) = await eventually(lambda: _slices(client))
    assert [e["addresses"] for e in only["endpoints"]] == [["172.17.0.3"]]

    table = await (await client.get(f"{NS}/endpoints", headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})).json()
    assert table["rows"][0]["cells"][:2] == ["web", "172.17.0.3:8080"]

    await write(client, "DELETE", f"{NS}/services/web", None, 200)
    assert await eventually(lambda: _equals(endpoints_ips(client), None))
    assert await eventually(lambda: _equals(_slices(client), []))


async def _equals(awaitable, expected):
    return await awaitable == expected


async def _slices(client):
    body = await (await client.get(SLICES, params={"labelSelector": f"{SERVICE_NAME}=web"})).json()
    return body["items"]
