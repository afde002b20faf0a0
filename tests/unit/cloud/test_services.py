"""Services: kube's defaulting and validation, and the cluster IPs and node ports allocated through the API."""
import random

import pytest
import pytest_asyncio

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.services import Band, default_service, ip_band, port_band, validate_service

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICES = "/api/v1/namespaces/default/services"


def service(name="web", **spec):
    spec.setdefault("ports", [{"port": 80}])
    spec.setdefault("selector", {"app": name})
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def messages(svc, old=None):
    return [e.message() for e in validate_service(default_service(svc), old)]


# -- defaulting ------------------------------------------------------------------------------------------------------

def test_defaults_are_kubes():
    svc = default_service(service(ports=[{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]))
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80},
                             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]
    assert svc["status"] == {"loadBalancer": {}}


def test_defaults_of_load_balancer_client_ip_affinity_and_a_requested_cluster_ip():
    spec = default_service(service(type="LoadBalancer", sessionAffinity="ClientIP", clusterIP="10.96.0.10"))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert spec["clusterIPs"] == ["10.96.0.10"]


# -- validation ------------------------------------------------------------------------------------------------------

def test_a_defaulted_service_is_valid():
    assert messages(service()) == []
    assert messages(service(ports=[], clusterIP="None")) == []  # headless: ports optional


@pytest.mark.parametrize(("svc", "expected"), [
    (service(ports=[]), "spec.ports: Required value"),
    (service(ports=[{"port": 80}, {"port": 81}]), "spec.ports[0].name: Required value"),
    (service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]), 'spec.ports[1].name: Duplicate value: "a"'),
    (service(ports=[{"port": 0}]), "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"),
    (service(ports=[{"port": 80, "targetPort": 70000}]), "spec.ports[0].targetPort: Invalid value: 70000"),
    (service(ports=[{"port": 80, "protocol": "ICMP"}]), 'spec.ports[0].protocol: Unsupported value: "ICMP"'),
    (service(type="Magic"), 'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName"'),
    (service(type="NodePort", clusterIP="None"), "may not be set to 'None' for NodePort services"),
    (service(ports=[{"port": 80, "nodePort": 30001}]), "spec.ports[0].nodePort: Forbidden: may not be used when "
                                                       "`type` is 'ClusterIP'"),
    (service(type="ExternalName"), "spec.externalName: Required value"),
    (service(selector={"app": "a b"}), 'spec.selector: Invalid value: "a b"'),
    (service(clusterIP="10.96.0.300"), 'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address'),
    ({**service(), "metadata": {"name": "1web", "namespace": "default"}},
     'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters'),
])
def test_invalid_services_answer_kubes_messages(svc, expected):
    assert any(expected in m for m in messages(svc)), messages(svc)


def test_a_cluster_ip_may_not_change_once_set():
    old = default_service(service(clusterIP="10.96.0.10"))
    new = default_service(service(clusterIP="10.96.0.11"))
    assert messages(new, old) == ['spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set']


# -- the ranges ------------------------------------------------------------------------------------------------------

def test_bands_skip_the_network_broadcast_and_kubernetes_addresses_and_prefer_the_upper_band():
    import ipaddress
    band = ip_band(ipaddress.ip_network("10.0.0.0/29"))
    assert (band.size, band.offset, band.reserved) == (6, 0, frozenset({int(ipaddress.ip_address("10.0.0.1"))}))
    big = ip_band(ipaddress.ip_network("10.96.0.0/12"))
    assert big.offset == 256
    picked = big.pick(set(), random.Random(1))
    assert picked is not None and picked >= big.base + 256
    ports = port_band("30000-32767")
    assert (ports.base, ports.size, ports.offset) == (30000, 2768, 86)
    assert Band(10, 2, 0).pick({10, 11}, random.Random(0)) is None


# -- allocation through the API ---------------------------------------------------------------------------------------

@pytest_asyncio.fixture
async def small(aiohttp_client, settings):
    """The API with a /29 service range (10.0.0.2-10.0.0.6 to hand out) and a 3-port node port range."""
    settings = settings.model_copy(update={"service_cluster_ip_range": "10.0.0.0/29",
                                           "service_node_port_range": "30000-30002"})
    return settings, await aiohttp_client(create_app(settings, TOKEN), headers=AUTH)


async def post(client, obj, code=201):
    resp = await client.post(SERVICES, json=obj)
    body = await resp.json()
    assert resp.status == code, body
    return body


@pytest.mark.asyncio
async def test_cluster_ips_are_unique_until_the_range_is_full_and_a_delete_frees_one(small):
    _, client = small
    made = [await post(client, service(f"s{i}")) for i in range(5)]
    ips = {svc["spec"]["clusterIP"] for svc in made}
    assert ips == {f"10.0.0.{i}" for i in range(2, 7)}
    assert all(svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]] for svc in made)
    assert all(svc["spec"]["ipFamilies"] == ["IPv4"] and svc["spec"]["ipFamilyPolicy"] == "SingleStack"
               for svc in made)
    full = await post(client, service("s5"), 500)
    assert full["message"] == "Internal error occurred: failed to allocate a serviceIP: range is full"
    assert (await client.delete(f"{SERVICES}/s2")).status == 200
    again = await post(client, service("s5"))
    assert again["spec"]["clusterIP"] == made[2]["spec"]["clusterIP"]


@pytest.mark.asyncio
async def test_a_requested_cluster_ip_is_honoured_when_free_and_in_range(small):
    _, client = small
    assert (await post(client, service("a", clusterIP="10.0.0.4")))["spec"]["clusterIP"] == "10.0.0.4"
    taken = await post(client, service("b", clusterIP="10.0.0.4"), 422)
    assert taken["message"] == ('Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.0.0.4"]: '
                                "failed to allocate IP 10.0.0.4: provided IP is already allocated")
    kubernetes = await post(client, service("c", clusterIP="10.0.0.1"), 422)
    assert "failed to allocate IP 10.0.0.1: provided IP is already allocated" in kubernetes["message"]
    outside = await post(client, service("d", clusterIP="10.0.0.7"), 422)
    assert ("failed to allocate IP 10.0.0.7: provided IP is not in the valid range. The range of valid IPs is "
            "10.0.0.0/29") in outside["message"]
    headless = await post(client, service("e", clusterIP="None"))
    assert headless["spec"]["clusterIPs"] == ["None"]
    v6 = await post(client, service("f", clusterIP="fd00::1"), 422)
    assert "spec.clusterIPs[0]: Invalid value: [\"fd00::1\"]: IPv6 is not configured on this cluster" in v6["message"]
    dry = await client.post(f"{SERVICES}?dryRun=All", json=service("g"))
    assert dry.status == 201 and (await dry.json())["spec"]["clusterIP"].startswith("10.0.0.")
    assert (await client.get(f"{SERVICES}/g")).status == 404


@pytest.mark.asyncio
async def test_allocations_survive_a_restart(small, aiohttp_client):
    settings, client = small
    first = await post(client, service("a"))
    await client.close()
    restarted = await aiohttp_client(create_app(settings, TOKEN), headers=AUTH)
    others = [await post(restarted, service(f"b{i}")) for i in range(4)]
    assert first["spec"]["clusterIP"] not in {svc["spec"]["clusterIP"] for svc in others}
    await post(restarted, service("c"), 500)


@pytest.mark.asyncio
async def test_node_ports_are_allocated_checked_and_kept_across_an_update(small):
    _, client = small
    svc = await post(client, service("np", type="NodePort", ports=[{"name": "a", "port": 80},
                                                                   {"name": "b", "port": 81}]))
    ports = [p["nodePort"] for p in svc["spec"]["ports"]]
    assert len(set(ports)) == 2 and all(30000 <= p <= 30002 for p in ports)
    # A PUT of the manifest without the allocated values keeps them (kube's patchAllocatedValues).
    manifest = service("np", type="NodePort", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81}])
    manifest["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
    resp = await client.put(f"{SERVICES}/np", json=manifest)
    put = await resp.json()
    assert resp.status == 200, put
    assert [p["nodePort"] for p in put["spec"]["ports"]] == ports
    assert put["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    taken = await post(client, service("t", type="NodePort", ports=[{"port": 80, "nodePort": ports[0]}]), 422)
    assert f"spec.ports[0].nodePort: Invalid value: {ports[0]}: provided port is already allocated" in taken["message"]
    outside = await post(client, service("o", type="NodePort", ports=[{"port": 80, "nodePort": 31000}]), 422)
    assert ("provided port is not in the valid range. The range of valid ports is 30000-30002"
            in outside["message"])
    await post(client, service("x", type="NodePort"))
    full = await post(client, service("y", type="NodePort"), 500)
    assert full["message"] == "Internal error occurred: failed to allocate a nodePort: range is full"


@pytest.mark.asyncio
async def test_a_type_change_to_external_name_releases_the_cluster_ip(small):
    _, client = small
    svc = await post(client, service("x"))
    resp = await client.patch(f"{SERVICES}/x", json={"spec": {"type": "ExternalName", "externalName": "example.com"}},
                              headers={"Content-Type": "application/merge-patch+json"})
    body = await resp.json()
    assert resp.status == 200, body
    assert "clusterIP" not in body["spec"] and "ipFamilies" not in body["spec"]
    again = await post(client, service("y", clusterIP=svc["spec"]["clusterIP"]))
    assert again["spec"]["clusterIP"] == svc["spec"]["clusterIP"]


@pytest.mark.asyncio
async def test_kubectl_get_svc_columns(small):
    _, client = small
    await post(client, service("np", type="NodePort", ports=[{"port": 80, "nodePort": 30001}]))
    resp = await client.get(f"{SERVICES}/np", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    table = await resp.json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Type", "Cluster-IP", "External-IP",
                                                               "Port(s)", "Age", "Selector"]
    name, kind, ip, external, ports, _age, selector = table["rows"][0]["cells"]
    assert (name, kind, external, ports, selector) == ("np", "NodePort", "<none>", "80:30001/TCP", "app=np")
    assert ip.startswith("10.0.0.")


@pytest.mark.asyncio
async def test_a_field_of_the_wrong_type_is_a_bad_request_as_kube_decodes_it(small):
    _, client = small
    body = await post(client, service("x", clusterIP=5), 400)
    assert body["message"] == ('Service in version "v1" cannot be handled as a Service: json: cannot unmarshal number '
                               "into Go struct field ServiceSpec.spec.clusterIP of type string")
    body = await post(client, service("x", ports=[{"port": 80, "nodePort": "x"}], type="NodePort"), 400)
    assert "ServicePort.spec.ports.nodePort of type int32" in body["message"]
