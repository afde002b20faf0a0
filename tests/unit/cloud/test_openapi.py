"""OpenAPI v3 documents: what kubectl's field-validation check looks for, checked with the real kubectl."""
from __future__ import annotations

import asyncio
import gzip
import json
import runpy
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from edgeworkers.cloud import discovery, managedfields, openapi, patch, protobuf
from edgeworkers.cloud.openapi import openapi_v3_doc, openapi_v3_root
from edgeworkers.k8s import printers


def test_root_lists_each_group_version_with_a_hash():
    paths = openapi_v3_root()["paths"]
    assert set(paths) == {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1",
                          "apis/discovery.k8s.io/v1", "apis/authentication.k8s.io/v1", "apis/metrics.k8s.io/v1beta1"}
    assert paths["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    assert openapi_v3_root() == openapi_v3_root(), "the hash is stable"


def test_every_kind_has_a_patch_with_field_validation_and_its_gvk():
    for gv, group, kinds in [("api/v1", "", {"Pod", "ConfigMap", "Secret", "Node", "Namespace", "Event", "ServiceAccount",
                                             "Service", "Endpoints", "ReplicationController"}),
                             ("apis/apps/v1", "apps", {"Deployment", "ReplicaSet", "DaemonSet", "ControllerRevision"}),
                             ("apis/batch/v1", "batch", {"Job"}),
                             ("apis/coordination.k8s.io/v1", "coordination.k8s.io", {"Lease"})]:
        doc = openapi_v3_doc(gv)
        patched = set()
        for item in doc["paths"].values():
            for method in ("post", "put", "patch"):
                if method in item:
                    names = {p["name"] for p in item[method]["parameters"] if p["in"] == "query"}
                    assert "fieldValidation" in names
            if "patch" in item:
                gvk = item["patch"]["x-kubernetes-group-version-kind"]
                assert gvk["group"] == group and gvk["version"] == "v1"
                assert "requestBody" not in item["patch"], "kubectl must use its built-in merge keys"
                patched.add(gvk["kind"])
        assert patched == kinds


def test_pod_paths_and_schema():
    doc = openapi_v3_doc("/api/v1")
    assert doc["openapi"].startswith("3.")
    assert {"get", "put", "patch", "delete"} <= set(doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"])
    assert {"get", "post"} <= set(doc["paths"]["/api/v1/namespaces/{namespace}/pods"])
    assert "/api/v1/nodes/{name}" in doc["paths"] and "/api/v1/pods" in doc["paths"]
    pod = doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}]


def test_unknown_group_version_is_none():
    assert openapi_v3_doc("apis/policy/v1") is None


def test_the_generated_definitions_are_those_of_the_served_kinds():
    """``ops/gen_openapi.py`` was run since the served kinds or the client's models last changed."""
    generator = runpy.run_path(str(Path(__file__).parents[3] / "ops" / "gen_openapi.py"))
    assert json.loads(gzip.decompress(openapi.DEFINITIONS_FILE.read_bytes())) == generator["build"](), \
        "run ops/gen_openapi.py"


def test_the_schemas_are_kubernetes_own_in_v2_and_v3():
    v2 = openapi.openapi_v2()
    assert v2["swagger"] == "2.0" and "/api/v1/namespaces/{namespace}/pods/{name}" in v2["paths"]
    spec = v2["definitions"]["io.k8s.api.core.v1.PodSpec"]
    assert spec["required"] == ["containers"]
    assert spec["properties"]["containers"] == {
        "type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
        "description": spec["properties"]["containers"]["description"]}
    port = v2["definitions"]["io.k8s.api.core.v1.HTTPGetAction"]["properties"]["port"]
    assert port["$ref"] == "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    int_or_string = v2["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (int_or_string["type"], int_or_string["format"]) == ("string", "int-or-string")
    meta = v2["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]
    assert meta["$ref"] == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    for served in discovery.SERVED:  # every served kind, by its group-version-kind
        kinds = {gvk["kind"] for d in v2["definitions"].values() for gvk in d.get("x-kubernetes-group-version-kind", [])
                 if (gvk["group"], gvk["version"]) == (served.group, served.version)}
        assert {r.kind for r in served.resources if "/" not in r.name} <= kinds

    v3 = openapi_v3_doc("api/v1")["components"]["schemas"]
    assert v3["io.k8s.api.core.v1.Pod"]["properties"]["metadata"] == {
        "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    assert openapi._v3_schema({"$ref": "#/definitions/x", "description": "d"}) == {
        "description": "d", "allOf": [{"$ref": "#/components/schemas/x"}]}
    assert v3["io.k8s.api.core.v1.HTTPGetAction"]["properties"]["port"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]
    assert "io.k8s.api.coordination.v1.Lease" not in v3  # each group-version's document holds its own


def _message(data: bytes) -> dict[int, list]:
    fields: dict[int, list] = {}
    for number, _wire, value in protobuf._fields(data):
        fields.setdefault(number, []).append(value)
    return fields


def test_the_v2_protobuf_is_gnostics_document():
    doc = _message(openapi.openapi_v2_protobuf())
    assert doc[1] == [b"2.0"] and _message(doc[2][0])[1] == [b"Kubernetes"]
    named = {_message(entry)[1][0].decode(): _message(entry)[2][0] for entry in _message(doc[9][0])[1]}
    assert set(named) == set(openapi.definitions())
    pod = _message(named["io.k8s.api.core.v1.Pod"])
    (extension,) = [_message(e) for e in pod[31]]
    assert extension[1] == [b"x-kubernetes-group-version-kind"]
    assert yaml.safe_load(_message(extension[2][0])[2][0]) == [{"group": "", "kind": "Pod", "version": "v1"}]
    properties = {_message(e)[1][0].decode() for e in _message(pod[25][0])[1]}
    assert properties == {"apiVersion", "kind", "metadata", "spec", "status"}
    paths = {_message(e)[1][0].decode() for e in _message(doc[8][0])[2]}
    assert paths == set(openapi.openapi_v2()["paths"])


# --- the real kubectl against a throwaway server built from these codecs ---

POD_YAML = """apiVersion: v1
kind: Pod
metadata: {{name: bb, labels: {{app: {label}}}}}
spec:
  containers:
  - name: bb
    image: {image}
    command: ["sh", "-c", "sleep 3600"]
"""


class Recorder:
    """A minimal API server for one namespace's pods and configmaps, recording every write."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.writes: list[tuple[str, str, str, bytes]] = []  # method, path+query, content type, body

    async def handle(self, request: web.Request) -> web.Response:
        path, body = request.path, await request.read()
        documents = {
            "/version": discovery.version, "/api": lambda: discovery.api_versions("127.0.0.1"),
            "/apis": discovery.api_group_list, "/api/v1": lambda: discovery.resource_list("api/v1"),
            "/apis/coordination.k8s.io/v1": lambda: discovery.resource_list("apis/coordination.k8s.io/v1"),
            "/openapi/v3": openapi.openapi_v3_root,
        }
        if path in documents:
            return web.json_response(documents[path]())
        if path.startswith("/openapi/v3/") and (doc := openapi.openapi_v3_doc(path[len("/openapi/v3/"):])):
            return web.json_response(doc)
        if path == "/openapi/v2":
            assert openapi.V2_PROTOBUF_ASKED in request.headers["Accept"]
            return web.Response(body=openapi.openapi_v2_protobuf(), content_type=openapi.V2_PROTOBUF)
        prefix = "/api/v1/namespaces/default/"
        resource, _, name = path[len(prefix):].partition("/") if path.startswith(prefix) else ("", "", "")
        if request.method != "GET":
            self.writes.append((request.method, request.path_qs, request.content_type, body))
        if request.method == "GET" and resource and not name:
            objs = [o for o in self.objects.values() if o["kind"].lower() + "s" == resource]
            return web.json_response(printers.to_table(resource, objs, "5", datetime.now(UTC)))
        if request.method == "GET" and name in self.objects:
            return web.json_response(self.objects[name])
        manager = request.query.get("fieldManager", "unknown")
        if request.method == "POST":
            obj = protobuf.decode_object(body) if request.content_type.endswith("protobuf") else json.loads(body)
            obj["metadata"].update(namespace="default", resourceVersion="1", creationTimestamp="2024-05-01T12:00:00Z")
            self.objects[obj["metadata"]["name"]] = managedfields.record_update(None, obj, manager)
            return web.json_response(obj, status=201)
        if request.method == "PATCH" and request.content_type == "application/apply-patch+yaml":
            try:
                obj = managedfields.server_side_apply(self.objects.get(name), yaml.safe_load(body), manager,
                                              request.query.get("force") == "true")
            except managedfields.ConflictError as exc:
                return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                          "message": exc.message, "reason": "Conflict",
                                          "details": {"causes": exc.causes()}, "code": 409}, status=409)
            self.objects[name] = obj
            return web.json_response(obj)
        if request.method == "PATCH" and name in self.objects:
            live = self.objects[name]
            if request.content_type == "application/json-patch+json":
                obj = patch.json_patch(live, json.loads(body))
            else:
                obj = patch.strategic_merge(live, json.loads(body), "Pod")
            self.objects[name] = managedfields.record_update(live, obj, manager)
            return web.json_response(self.objects[name])
        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": f'"{name}" not found', "reason": "NotFound", "code": 404}, status=404)


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[tuple[Recorder, Callable[..., str]]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not on PATH")
    recorder, loop, ready = Recorder(), asyncio.new_event_loop(), threading.Event()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    port: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        port.append(runner.addresses[0][1])
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: 'http://127.0.0.1:{port[0]}'}}}}]\n"
        "users: [{name: t, user: {}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]\n")

    def run(*args: str, stdin: str | None = None, fails: bool = False) -> str:
        done = subprocess.run(["kubectl", "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "cache"), *args],
                              input=stdin, capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode != 0) is fails, done.stderr
        return done.stderr if fails else done.stdout

    yield recorder, run
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_kubectl_apply_validates_on_the_server_and_its_patch_keeps_the_command(kubectl):
    recorder, run = kubectl
    run("apply", "-f", "-", stdin=POD_YAML.format(label="web", image="busybox:1.28"))
    method, url, _, _ = recorder.writes[0]
    assert method == "POST" and "fieldValidation=Strict" in url
    run("apply", "-f", "-", stdin=POD_YAML.format(label="web2", image="busybox:1.36"))
    method, url, content_type, body = recorder.writes[-1]
    assert (method, content_type) == ("PATCH", "application/strategic-merge-patch+json")
    assert "fieldValidation=Strict" in url
    assert "$setElementOrder/containers" in json.loads(body)["spec"]
    pod = recorder.objects["bb"]
    assert pod["metadata"]["labels"] == {"app": "web2"}
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert pod["spec"]["containers"][0]["command"] == ["sh", "-c", "sleep 3600"]


def test_kubectl_create_configmap_and_get_table(kubectl):
    recorder, run = kubectl
    run("create", "configmap", "app-config", "--from-literal=a=b", "--from-literal=c=d")
    assert recorder.writes[0][2] == "application/vnd.kubernetes.protobuf"
    assert recorder.objects["app-config"]["data"] == {"a": "b", "c": "d"}
    lines = run("get", "configmaps").splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert lines[1].split()[:2] == ["app-config", "2"]


def test_kubectl_server_side_apply_reports_the_conflict_and_forces(kubectl):
    recorder, run = kubectl
    run("apply", "-f", "-", stdin=POD_YAML.format(label="web", image="busybox:1.28"))
    changed = POD_YAML.format(label="web", image="busybox:1.36")
    error = run("apply", "--server-side", "-f", "-", stdin=changed, fails=True)
    assert ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: '
            '.spec.containers[name="bb"].image') in error
    run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=changed)
    pod = recorder.objects["bb"]
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.36"
    # kubectl then migrates the client-side apply ownership with a JSON patch of managedFields
    managers = {e["manager"]: e for e in pod["metadata"]["managedFields"]}
    assert set(managers) == {"kubectl", "kubectl-last-applied"}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:command" in managers["kubectl"]["fieldsV1"]["f:spec"]["f:containers"]['k:{"name":"bb"}']


LIST_YAML = """apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: one}, data: {a: "1"}}
- apiVersion: v1
  kind: Pod
  metadata: {name: two}
  spec:
    containers:
    - name: c
      image: busybox
      resources: {limits: {cpu: 1, memory: 10Mi}}
      livenessProbe: {httpGet: {port: 80, path: /}}%s
"""


def test_kubectl_applies_a_list_validated_against_openapi_v2(kubectl):
    recorder, run = kubectl
    refused = run("apply", "-f", "-", stdin=LIST_YAML % "\n      bogus: 1", fails=True)
    assert 'unknown field "bogus" in io.k8s.api.core.v1.Container' in refused and not recorder.writes
    run("apply", "-f", "-", stdin=LIST_YAML % "")
    assert {"one", "two"} <= set(recorder.objects)


def test_kubectl_explain_describes_each_field(kubectl):
    _recorder, run = kubectl
    out = run("explain", "pod.spec.containers.ports")
    assert "FIELD: ports <[]ContainerPort>" in out and "containerPort\t<integer> -required-" in out
