"""metrics.k8s.io/v1beta1 as metrics-server serves it, from the reports nodes PUT; who may write them."""
from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from edgeworkers.cloud import metrics_api
from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.auth import NodeTokens
from edgeworkers.cloud.metrics_api import MetricsApi, cpu, memory, window

pytestmark = pytest.mark.asyncio

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "/apis/metrics.k8s.io/v1beta1"


def report(pods: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"timestamp": "2026-01-01T00:00:00Z", "windowSeconds": 15.002,
            "node": {"cpu": 250_000_000, "memory": 512 * 1024 * 1024}, "pods": pods or []}


def pod_usage(name: str, cpu_n: int = 1_234_567, mem: int = 3456 * 1024) -> dict[str, Any]:
    return {"namespace": "default", "name": name, "containers": [{"name": "app", "cpu": cpu_n, "memory": mem}]}


@pytest.mark.parametrize(("nanocores", "text"), [
    (0, "0"), (12_000_000, "12m"), (1_234_567, "1234567n"), (1000, "1u"), (2_000_000_000, "2"), (-5, "0")])
async def test_cpu_is_written_in_canonical_nanocores(nanocores: int, text: str) -> None:
    assert cpu(nanocores) == text


@pytest.mark.parametrize(("size", "text"), [
    (3456 * 1024, "3456Ki"), (12 * 1024 * 1024, "12Mi"), (1000, "1000"), (1025, "1025"), (0, "0"),
    (2 * 1024**3, "2Gi")])
async def test_memory_is_written_in_binary_si(size: int, text: str) -> None:
    assert memory(size) == text


async def test_window_is_a_go_duration() -> None:
    assert (window(15), window(15.0024), window(0.5)) == ("15s", "15.002s", "0.5s")


@pytest_asyncio.fixture
async def client(aiohttp_client: Any, settings: Any) -> Any:
    client = await aiohttp_client(create_app(settings, TOKEN), headers=AUTH)
    for name in ("edge-1", "edge-2"):
        resp = await client.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node",
                                                         "metadata": {"name": name, "labels": {"zone": name}}})
        assert resp.status == 201
    for name, node in (("web", "edge-1"), ("other", "edge-2"), ("young", "edge-1")):
        resp = await client.post("/api/v1/namespaces/default/pods", json={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox"}]}})
        assert resp.status == 201, await resp.text()
    return client


async def test_discovery_lists_the_group_at_v1beta1(client: Any) -> None:
    groups = (await (await client.get("/apis")).json())["groups"]
    metrics = next(g for g in groups if g["name"] == "metrics.k8s.io")
    assert metrics["preferredVersion"] == {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
    resources = (await (await client.get(BASE)).json())["resources"]
    assert [(r["name"], r["kind"], r["namespaced"]) for r in resources] == [
        ("nodes", "NodeMetrics", False), ("pods", "PodMetrics", True)]


async def test_a_report_is_served_as_node_and_pod_metrics(client: Any) -> None:
    # edge-1 reports its pod and, wrongly, edge-2's: only what is bound to edge-1 is kept.
    young = {**pod_usage("young"), "windowSeconds": 2.5}  # started since the last report: its life is its window
    resp = await client.put(f"{BASE}/nodes/edge-1",
                            json=report([pod_usage("web"), pod_usage("other"), young]))
    assert resp.status == 200, await resp.text()

    node = await (await client.get(f"{BASE}/nodes/edge-1")).json()
    assert node["kind"] == "NodeMetrics" and node["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert (node["metadata"]["name"], node["timestamp"], node["window"]) == ("edge-1", "2026-01-01T00:00:00Z",
                                                                              "15.002s")
    assert node["usage"] == {"cpu": "250m", "memory": "512Mi"}
    nodes = await (await client.get(f"{BASE}/nodes", params={"labelSelector": "zone=edge-1"})).json()
    assert nodes["kind"] == "NodeMetricsList" and [n["metadata"]["name"] for n in nodes["items"]] == ["edge-1"]

    pods = await (await client.get(f"{BASE}/namespaces/default/pods")).json()
    assert pods["kind"] == "PodMetricsList"
    web, young = sorted(pods["items"], key=lambda p: p["metadata"]["name"])
    assert (web["metadata"]["name"], web["metadata"]["namespace"], web["window"]) == ("web", "default", "15.002s")
    assert (young["metadata"]["name"], young["window"]) == ("young", "2.5s")
    assert web["containers"] == [{"name": "app", "usage": {"cpu": "1234567n", "memory": "3456Ki"}}]
    assert (await client.get(f"{BASE}/namespaces/default/pods/web")).status == 200
    missing = await client.get(f"{BASE}/namespaces/default/pods/other")
    assert missing.status == 404
    assert (await missing.json())["message"] == 'podmetrics.metrics.k8s.io "other" not found'
    selected = await (await client.get(f"{BASE}/pods", params={"labelSelector": "app=nope"})).json()
    assert selected["items"] == []


async def test_a_node_writes_only_its_own_usage_and_no_one_anonymous_reads(client: Any, settings: Any) -> None:
    token = NodeTokens(settings.cloud_data_dir).issue("edge-1")
    as_node = {"Authorization": f"Bearer {token}"}
    assert (await client.put(f"{BASE}/nodes/edge-1", json=report(), headers=as_node)).status == 200
    refused = await client.put(f"{BASE}/nodes/edge-2", json=report(), headers=as_node)
    assert refused.status == 403
    assert "node 'edge-1' can only modify its own Node" in (await refused.json())["message"]
    anonymous = await client.get(f"{BASE}/nodes", headers={"Authorization": ""})
    assert anonymous.status == 401


@pytest.mark.parametrize("body", [{}, {"node": {"cpu": "x"}}, [], {"node": {"cpu": 1, "memory": 1}}])
async def test_a_malformed_report_is_a_bad_request(client: Any, body: Any) -> None:
    resp = await client.put(f"{BASE}/nodes/edge-1", json=body)
    assert resp.status == 400
    assert (await resp.json())["reason"] == "BadRequest"


async def test_reads_only_and_known_resources(client: Any) -> None:
    assert (await client.post(f"{BASE}/nodes", json={})).status == 405
    assert (await client.get(f"{BASE}/deployments")).status == 404


async def test_reports_expire(client: Any) -> None:
    now = [0.0]

    class Store:
        def find(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
            return {"metadata": {"name": name, "namespace": namespace}}

        def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
            return [{"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "edge-1"}}]

    api = MetricsApi(Store(), monotonic=lambda: now[0])  # type: ignore[arg-type]
    api.put("edge-1", report([pod_usage("web")]))
    now[0] = metrics_api.EXPIRY_S
    assert api.node_metrics("edge-1") is not None and len(api.pod_metrics()) == 1
    now[0] = metrics_api.EXPIRY_S + 1
    assert api.node_metrics("edge-1") is None and api.pod_metrics() == []
