"""Hypothesis drives 10,000 generated requests at the cloud in process: random and plausible paths, verbs, queries,
headers, content types and bodies. None may answer 500 (but the log proxy's, as kube-apiserver's, for a node it cannot
reach) or hang; every error is a Kubernetes Status; afterwards the server still answers and its store is consistent:
what is on disk is what is in memory, resourceVersions are unique and below the counter, every namespaced object's
namespace exists with its default ServiceAccount."""
from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from edgeworkers.cloud.app import API_KEY, create_app
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.tls import issue_node_credentials
from tests.credentials import kubeconfig_token

REQUESTS_PER_EXAMPLE = 10
EXAMPLES = 1000  # 10,000 requests
TOKEN = "fuzz-admin"
REQUEST_TIMEOUT_S = 10.0

NAMES = st.sampled_from(["a", "web", "edge-1", "default", "kube-system", "x" * 64, "Bad_Name", "", "..", "%2F"])
NAMESPACES = st.sampled_from(["default", "team", "kube-node-lease", "nope", "kube-system"])
RESOURCES = st.sampled_from(["pods", "configmaps", "secrets", "events", "nodes", "namespaces", "leases",
                             "serviceaccounts", "bogus"])
SUBS = st.sampled_from([None, None, None, "status", "log", "binding", "exec", "eviction"])
CONTENT_TYPES = st.sampled_from([
    "application/json", "application/yaml", "application/merge-patch+json", "application/strategic-merge-patch+json",
    "application/json-patch+json", "application/apply-patch+yaml", "application/vnd.kubernetes.protobuf",
    "text/plain", "application/json; charset=utf-8", "",
])
ACCEPTS = st.sampled_from([
    "application/json", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", "*/*", "text/html", "",
])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=12))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
LABELS = st.dictionaries(st.sampled_from(["app", "tier", "bad key", "kubernetes.io/x"]), st.text(max_size=6),
                         max_size=3)


KIND_OF = {"pods": "Pod", "configmaps": "ConfigMap", "secrets": "Secret", "nodes": "Node", "namespaces": "Namespace",
           "leases": "Lease", "events": "Event", "serviceaccounts": "ServiceAccount"}


@st.composite
def plausible_object(draw: st.DrawFn, resource: str | None = None) -> dict[str, Any]:
    kinds = ["Pod", "ConfigMap", "Secret", "Node", "Namespace", "Lease", "Event", "ServiceAccount", "Nope"]
    kind = KIND_OF.get(resource or "") if draw(st.integers(0, 4)) else None
    kind = kind or draw(st.sampled_from(kinds))
    meta: dict[str, Any] = {"name": draw(NAMES)}
    if draw(st.booleans()):
        meta["labels"] = draw(LABELS)
    if draw(st.integers(0, 19)) == 0:
        meta["resourceVersion"] = draw(st.sampled_from(["1", "999999", "abc"]))
    if draw(st.integers(0, 9)) == 0:
        meta["annotations"] = {"kubernetes.io/config.mirror": "h"}
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if kind == "Pod":
        container = {"name": draw(st.sampled_from(["c", "C!", ""])), "image": draw(st.sampled_from(["busybox", ""])),
                     "command": ["sleep", "1"]}
        spec: dict[str, Any] = {"containers": draw(st.sampled_from([[container], [], [container, container]]))}
        if draw(st.booleans()):
            spec["nodeName"] = draw(st.sampled_from(["edge-1", "edge-2"]))
        if draw(st.booleans()):
            spec["volumes"] = [{"name": "v", "secret": {"secretName": draw(NAMES)}}]
        obj["spec"] = spec
        if draw(st.booleans()):
            obj["status"] = {"phase": draw(st.sampled_from(["Running", "Pending", 7]))}
    elif kind in ("ConfigMap", "Secret"):
        obj["data"] = draw(st.dictionaries(st.sampled_from(["k", "k.2", "bad/key"]), st.sampled_from(["v", "dg==", 3]),
                                           max_size=2))
    elif kind == "Node":
        obj["status"] = {"conditions": [{"type": "Ready", "status": draw(st.sampled_from(["True", "False"]))}]}
    elif kind == "Lease":
        obj["apiVersion"] = "coordination.k8s.io/v1"
        obj["spec"] = {"holderIdentity": draw(NAMES), "leaseDurationSeconds": draw(st.integers(-1, 100))}
    if draw(st.integers(0, 4)) == 0:
        obj[draw(st.text(max_size=5))] = draw(JSON_VALUES)
    return obj


@st.composite
def body(draw: st.DrawFn, content_type: str, resource: str | None) -> bytes | None:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return None
    if choice == 1:
        return draw(st.binary(max_size=64))
    if choice == 2:
        return orjson.dumps(draw(JSON_VALUES), option=orjson.OPT_NON_STR_KEYS)
    if choice == 3 or content_type == "application/json-patch+json":
        ops = draw(st.lists(st.fixed_dictionaries({
            "op": st.sampled_from(["add", "remove", "replace", "test", "move", "copy", "bogus"]),
            "path": st.sampled_from(["/metadata/labels/a", "/spec/containers/0/image", "/data/k", "", "/x/y"]),
            "value": JSON_VALUES}), max_size=3))
        return json.dumps(ops).encode()
    obj = draw(plausible_object(resource))
    if "yaml" in content_type and draw(st.booleans()):
        return yaml.safe_dump(obj).encode()
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


@st.composite
def request(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(st.sampled_from(["GET", "GET", "POST", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW"]))
    kind = draw(st.integers(0, 19))
    resource = None
    if kind == 0:
        path = draw(st.sampled_from(["/version", "/api", "/apis", "/api/v1", "/openapi/v3", "/openapi/v3/api/v1",
                                     "/healthz", "/apis/coordination.k8s.io", "/apis/nope/v1", "/", "/api/v2"]))
    elif kind == 1:
        path = "/" + "/".join(quote(segment, safe="") for segment in draw(st.lists(st.text(min_size=1, max_size=6), max_size=5)))
    else:
        resource = draw(RESOURCES)
        prefix = "/apis/coordination.k8s.io/v1" if resource == "leases" else "/api/v1"
        parts = [prefix]
        if resource not in ("nodes", "namespaces") and draw(st.integers(0, 5)):
            parts += ["namespaces", draw(NAMESPACES)]
        parts.append(resource)
        if draw(st.integers(0, 2)) and not (method == "POST" and draw(st.booleans())):
            parts.append(draw(NAMES))
            sub = draw(SUBS)
            if sub:
                parts.append(sub)
        path = "/".join(parts)
    query = draw(st.dictionaries(st.sampled_from([
        "watch", "labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "dryRun", "fieldManager",
        "fieldValidation", "gracePeriodSeconds", "allowWatchBookmarks", "force", "container", "tailLines",
    ]), st.sampled_from(["true", "1", "0", "-1", "All", "Strict", "app=web", "spec.nodeName=edge-1", "a!=", "x",
                         "metadata.name=a", "kubectl", "", "99999999999999999999"]), max_size=3))
    content_type = draw(CONTENT_TYPES)
    if method in ("POST", "PUT") and draw(st.booleans()):
        content_type = "application/json"  # more writes that land: a store with more in it to get wrong
    headers = {"Accept": draw(ACCEPTS)}
    if content_type:
        headers["Content-Type"] = content_type
    auth = draw(st.integers(0, 19))
    headers["Authorization"] = {0: "Bearer nope", 1: "", 2: "NODE"}.get(auth, f"Bearer {TOKEN}")
    return {"method": method, "path": path, "query": query, "headers": headers,
            "body": draw(body(content_type, resource)) if method in ("POST", "PUT", "PATCH", "DELETE") else None}


class Fuzzer:
    def __init__(self, settings_: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.settings = settings_
        self.node_token = kubeconfig_token(issue_node_credentials(settings_, "edge-1"))
        self.app = create_app(settings_, TOKEN, bookmark_interval=0.05)

        async def start() -> TestClient:
            client = TestClient(TestServer(self.app))
            await client.start_server()
            return client

        self.client = self.loop.run_until_complete(start())
        self.count = 0
        self.codes: dict[int, int] = {}

    def send(self, req: dict[str, Any]) -> None:
        self.loop.run_until_complete(asyncio.wait_for(self._send(req), REQUEST_TIMEOUT_S))

    async def _send(self, req: dict[str, Any]) -> None:
        headers = dict(req["headers"])
        if headers["Authorization"] == "NODE":
            headers["Authorization"] = f"Bearer {self.node_token}"
        try:
            resp = await self.client.request(req["method"], req["path"], params=req["query"], headers=headers,
                                             data=req["body"])
        except aiohttp.ServerDisconnectedError:
            print(f"\nFUZZ-DISCONNECT {req!r}\n")
            raise
        self.count += 1
        self.codes[resp.status] = self.codes.get(resp.status, 0) + 1
        streaming = resp.headers.get("Transfer-Encoding") == "chunked"
        if streaming:  # a watch or a followed log: the status and headers are the answer; leave it
            resp.close()
            assert resp.status < 500, req
            return
        text = await resp.read()
        if resp.status >= 500:
            message = orjson.loads(text).get("message", "")
            proxied = req["path"].endswith("/log") and ("kubelet endpoint" in message or "dial tcp" in message)
            if not proxied:
                print(f"\nFUZZ-500 {req!r}\n")
            assert proxied, (req, resp.status, text[:500])
        if resp.status >= 400 and req["method"] != "HEAD" and resp.content_type == "application/json":
            status = orjson.loads(text)
            assert status["kind"] == "Status" and status["code"] == resp.status, (req, text[:300])

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory):
    from edgeworkers.config import Settings

    root = tmp_path_factory.mktemp("fuzz")
    fuzz = Fuzzer(Settings(node_name="edge-1", data_dir=root / "data", cloud_data_dir=root / "cloud"))
    yield fuzz
    fuzz.close()


@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(batch=st.lists(request(), min_size=REQUESTS_PER_EXAMPLE, max_size=REQUESTS_PER_EXAMPLE))
def test_generated_requests_never_fail_the_server(fuzzer: Fuzzer, batch: list[dict[str, Any]]) -> None:
    for req in batch:
        fuzzer.send(req)


def test_after_the_fuzz_the_server_answers_and_its_store_is_consistent(fuzzer: Fuzzer, capsys) -> None:
    with capsys.disabled():  # shown in every run, not only with -s
        print(f"\nfuzz: {fuzzer.count} generated requests, status codes {dict(sorted(fuzzer.codes.items()))}")
    assert fuzzer.count >= REQUESTS_PER_EXAMPLE * EXAMPLES
    fuzzer.send({"method": "GET", "path": "/version", "query": {}, "headers": {"Authorization": f"Bearer {TOKEN}"},
                 "body": None})
    store = fuzzer.app[API_KEY].store
    store.flush()
    on_disk = Store(fuzzer.settings.cloud_data_dir / "objects.db")
    try:
        rvs: list[int] = []
        for resource in ("pods", "configmaps", "secrets", "events", "nodes", "namespaces", "leases",
                         "serviceaccounts"):
            memory = store.list(resource)
            assert [orjson.dumps(o) for o in memory] == [orjson.dumps(o) for o in on_disk.list(resource)], resource
            for obj in memory:
                meta = obj["metadata"]
                rvs.append(int(meta["resourceVersion"]))
                if meta.get("namespace"):
                    assert store.find("namespaces", "", meta["namespace"]) is not None, (resource, meta)
        assert len(rvs) == len(set(rvs)) and max(rvs) <= store.resource_version == on_disk.resource_version
        for namespace in store.list("namespaces"):
            assert store.find("serviceaccounts", namespace["metadata"]["name"], "default") is not None
    finally:
        on_disk.close()
