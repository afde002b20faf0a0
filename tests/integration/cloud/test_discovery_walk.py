"""Discovery lists exactly what is served: every path the discovery documents and OpenAPI name answers, with and
without a trailing slash, and the aggregated documents kubectl reads list what the plain ones list."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import requests
import yaml

if TYPE_CHECKING:
    from conftest import Cloud

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@pytest.fixture
def http(cloud: Cloud) -> Iterator[requests.Session]:
    token = yaml.safe_load(cloud.kubeconfig.read_text())["users"][0]["user"]["token"]
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        session.verify = str(cloud.data_dir / "ca.crt")
        session.trust_env = False  # else REQUESTS_CA_BUNDLE would win over the cloud's CA
        yield session


def url(cloud: Cloud, path: str) -> str:
    return f"https://127.0.0.1:{cloud.port}{path}"


def plain_resources(cloud: Cloud, http: requests.Session) -> dict[str, list[dict]]:
    """Group-version path (``/api/v1``, ``/apis/g/v``) -> its APIResourceList's resources."""
    versions = [f"/api/{v}" for v in http.get(url(cloud, "/api")).json()["versions"]]
    for group in http.get(url(cloud, "/apis")).json()["groups"]:
        versions += [f"/apis/{v['groupVersion']}" for v in group["versions"]]
    return {path: http.get(url(cloud, path)).json()["resources"] for path in versions}


def listed_paths(cloud: Cloud, http: requests.Session) -> tuple[set[str], set[str]]:
    """Every path discovery and OpenAPI list that a GET reads, and the collections that take only a create."""
    gets, creates = {"/version", "/api", "/apis", "/openapi/v3"}, set()
    for group in http.get(url(cloud, "/apis")).json()["groups"]:
        gets.add(f"/apis/{group['name']}")
    for gv, resources in plain_resources(cloud, http).items():
        gets.add(gv)
        for resource in resources:
            name, verbs = resource["name"], resource["verbs"]
            if "/" in name:
                continue  # subresources need an object's name
            scoped = f"{gv}/namespaces/default/{name}" if resource["namespaced"] else f"{gv}/{name}"
            if "list" in verbs:
                gets.update({scoped, f"{gv}/{name}"})
            elif verbs == ["create"]:
                creates.add(f"{gv}/{name}")
    for entry in http.get(url(cloud, "/openapi/v3")).json()["paths"].values():
        document = entry["serverRelativeURL"].partition("?")[0]
        gets.add(document)
        for path, operations in http.get(url(cloud, document)).json()["paths"].items():
            if "{name}" not in path and "get" in operations:
                gets.add(path.replace("{namespace}", "default"))
            elif "{name}" not in path and "post" in operations and "list" not in operations:
                creates.add(path)
    return gets, creates


def test_every_listed_path_answers_with_and_without_a_trailing_slash(cloud: Cloud, http: requests.Session) -> None:
    gets, creates = listed_paths(cloud, http)
    assert "/apis/coordination.k8s.io/v1/namespaces/default/leases" in gets and "/apis/metrics.k8s.io/v1beta1" in gets
    assert creates == {"/apis/authentication.k8s.io/v1/selfsubjectreviews",
                       "/apis/authentication.k8s.io/v1/tokenreviews"}
    failures = []
    for path in sorted(gets):
        for variant in (path, path + "/"):
            response = http.get(url(cloud, variant))
            if response.status_code != 200:
                failures.append(f"GET {variant}: {response.status_code}")
    body = {"apiVersion": "authentication.k8s.io/v1", "spec": {"token": "not-a-token"}}
    for path in sorted(creates):
        for variant in (path, path + "/"):
            response = http.post(url(cloud, variant), json=body)
            if response.status_code != 201:
                failures.append(f"POST {variant}: {response.status_code}")
            if http.get(url(cloud, variant)).status_code != 405:  # create-only: a GET is refused, not unknown
                failures.append(f"GET {variant} is not 405")
    assert failures == []


def test_aggregated_discovery_lists_what_the_plain_documents_list(cloud: Cloud, http: requests.Session) -> None:
    plain = {(gv, r["name"], tuple(r["verbs"])) for gv, resources in plain_resources(cloud, http).items()
             for r in resources}
    aggregated = set()
    for root in ("/api", "/apis/"):
        response = http.get(url(cloud, root), headers={"Accept": f"{AGGREGATED},application/json"})
        assert response.headers["Content-Type"] == AGGREGATED
        for item in response.json()["items"]:
            group = item["metadata"].get("name", "")
            for version in item["versions"]:
                gv = f"/apis/{group}/{version['version']}" if group else f"/api/{version['version']}"
                for r in version["resources"]:
                    aggregated.add((gv, r["resource"], tuple(r["verbs"])))
                    aggregated.update((gv, f"{r['resource']}/{s['subresource']}", tuple(s["verbs"]))
                                      for s in r.get("subresources", []))
    assert aggregated == plain


def test_kubectl_api_resources_reads_the_aggregated_documents(cloud: Cloud, http: requests.Session) -> None:
    listed = cloud.kubectl("api-resources", "-o", "name").stdout.split()
    expected = {name if gv.startswith("/api/") else f"{name}.{gv.split('/')[2]}"
                for gv, resources in plain_resources(cloud, http).items()
                for name in (r["name"] for r in resources) if "/" not in name}
    assert set(listed) == expected
    versions = cloud.kubectl("api-versions").stdout.split()
    assert set(versions) == {"v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
                             "authentication.k8s.io/v1", "metrics.k8s.io/v1beta1"}  # fmt: skip
    assert json.loads(cloud.kubectl("get", "--raw", "/version/").stdout)["gitVersion"] == "v1.32.0"
