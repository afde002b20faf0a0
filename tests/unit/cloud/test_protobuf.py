"""Protobuf request bodies built by hand from generated.proto's field numbers, decoded to Kubernetes JSON."""
from __future__ import annotations

import base64
import gzip
import json

import pytest

from edgeworkers.cloud import protobuf
from edgeworkers.cloud.discovery import SERVED
from edgeworkers.cloud.protobuf import MAGIC, decode_object


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: bytes | str | int | bool) -> bytes:
    """One field, encoded as gogo-protobuf does: ints and bools as varints, the rest length-delimited."""
    if isinstance(value, (bool, int)):
        return varint(number << 3) + varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def entries(number: int, mapping: dict) -> bytes:
    return b"".join(field(number, field(1, k) + field(2, v)) for k, v in mapping.items())


def object_meta(name: str, namespace: str = "", labels: dict | None = None, annotations: dict | None = None,
                **extra) -> bytes:
    # gogo-protobuf writes every non-pointer string, even empty: kubectl's bodies carry 1..6 always
    body = field(1, name) + field(2, "") + field(3, namespace) + field(4, "") + field(5, "") + field(6, "")
    body += field(7, 0) + field(8, b"")  # generation 0, zero creationTimestamp
    body += entries(11, labels or {}) + entries(12, annotations or {})
    for number, value in extra.items():
        body += field(int(number[1:]), value)
    return field(1, body)  # ObjectMeta is field 1 of every object


def unknown(kind: str, raw: bytes, api_version: str = "v1") -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return MAGIC + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")


def test_configmap_from_kubectl_create_configmap():
    raw = object_meta("app-config", labels={"app": "web"}) + entries(2, {"a": "b", "greeting": "héllo"}) \
        + entries(3, {"blob": b"\x00\xff"})
    assert decode_object(unknown("ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "labels": {"app": "web"}},
        "data": {"a": "b", "greeting": "héllo"},
        "binaryData": {"blob": base64.b64encode(b"\x00\xff").decode()},
    }


def test_immutable_configmap():
    obj = decode_object(unknown("ConfigMap", object_meta("c") + field(4, True)))
    assert obj["immutable"] is True and "data" not in obj


def test_secret_from_kubectl_create_secret_generic():
    raw = object_meta("creds", annotations={"note": "x"}) + entries(2, {"password": b"s3cr\xe9t"}) \
        + field(3, "Opaque") + entries(4, {"user": "admin"}) + field(5, False)
    assert decode_object(unknown("Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "annotations": {"note": "x"}},
        "data": {"password": base64.b64encode(b"s3cr\xe9t").decode()},
        "type": "Opaque",
        "stringData": {"user": "admin"},
        "immutable": False,
    }


def test_secret_with_empty_type_leaves_type_out():
    obj = decode_object(unknown("Secret", object_meta("s") + field(3, "")))
    assert "type" not in obj


def test_namespace_and_metadata_details():
    created = field(1, 1714564800) + field(2, 0)
    owner = field(1, "Node") + field(3, "edge-1") + field(4, "uid-1") + field(5, "v1") + field(6, True)
    raw = object_meta("team-a", namespace="", f5="uid-9", f7=3, f8=created, f13=owner, f14="example.com/x") \
        + field(2, field(1, "kubernetes")) + field(3, field(1, "Active"))
    obj = decode_object(unknown("Namespace", raw))
    assert obj["metadata"] == {
        "name": "team-a", "uid": "uid-9", "generation": 3, "creationTimestamp": "2024-05-01T12:00:00Z",
        "ownerReferences": [{"kind": "Node", "name": "edge-1", "uid": "uid-1", "apiVersion": "v1",
                             "controller": True}],
        "finalizers": ["example.com/x"],
    }
    assert obj["spec"] == {"finalizers": ["kubernetes"]} and obj["status"] == {"phase": "Active"}


def test_unknown_fields_are_skipped():
    raw = object_meta("c") + field(99, "future") + varint(98 << 3 | 5) + b"\x01\x02\x03\x04"
    assert decode_object(unknown("ConfigMap", raw))["metadata"] == {"name": "c"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind":"ConfigMap"}', "magic"),
        (unknown("CronJob", b"", api_version="batch/v1"), "no protobuf decoder for batch/v1/CronJob"),
        (unknown("ConfigMap", b"", api_version="apps/v1"), "no protobuf decoder for apps/v1/ConfigMap"),
        (MAGIC + b"\x0a\x05ab", "truncated"),
        (MAGIC + b"\x08\xff", "truncated varint"),
        (MAGIC + b"\x0b", "unsupported wire type"),
        (unknown("ConfigMap", field(1, field(1, b"\xff\xfe"))), "invalid UTF-8"),
        (MAGIC + field(1, field(1, "v1") + field(2, "ConfigMap")) + field(3, "gzip"), "content encoding"),
    ],
)
def test_malformed_bodies_raise_value_error(body, message):
    with pytest.raises(ValueError, match=message):
        decode_object(body)


# Bodies kubectl v1.32.4 sent (captured with -v=8): `create configmap y --from-literal=a=b --from-literal=c=d`,
# `create secret generic s --from-literal=user=admin --from-literal=pw=p@ss`, `create namespace team`.
KUBECTL_CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d617012230a110a017912001a00220"
    "02a00320038004200120" "60a0161120162120" "60a0163120164" "1a002200")
KUBECTL_SECRET = bytes.fromhex(
    "6b3873000a0c0a02763112065365637265741230" "0a110a0173120" "01a00220" "02a00320038004200"
    "120a0a0270771204704073731" "20d0a0475736572120561646d696e1a001a002200")
KUBECTL_NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a027631120" "94e616d657370616365121c0a140a047465616d12001a00220" "02a00320038004200"
    "12001a020a001a002200")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (KUBECTL_CONFIGMAP, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"},
                             "data": {"a": "b", "c": "d"}}),
        (KUBECTL_SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                          "data": {"pw": base64.b64encode(b"p@ss").decode(),
                                   "user": base64.b64encode(b"admin").decode()}}),
        (KUBECTL_NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"},
                             "spec": {}, "status": {}}),
    ],
)
def test_bodies_captured_from_kubectl(body, expected):
    assert decode_object(body) == expected


def message(*fields: bytes) -> bytes:
    return b"".join(fields)


def int_or_string(value: int | str) -> bytes:
    if isinstance(value, int):
        return field(1, 0) + field(2, value) + field(3, "")
    return field(1, 1) + field(2, 0) + field(3, value)


def quantities(number: int, mapping: dict) -> bytes:
    return b"".join(field(number, field(1, k) + field(2, field(1, v))) for k, v in mapping.items())


# A container as gogo-protobuf writes it: non-pointer strings always, even empty (core/v1 generated.proto Container).
CONTAINER = message(
    field(1, "web"), field(2, "nginx:1.27"), field(3, "nginx"), field(4, "-g"),
    field(6, field(1, "") + field(2, 0) + field(3, 8080) + field(4, "TCP") + field(5, "")),  # ports
    field(7, field(1, "MODE") + field(2, "edge")),  # env
    field(8, quantities(1, {"cpu": "500m", "memory": "128Mi"}) + quantities(2, {"cpu": "100m"})),  # resources
    field(10, field(1, field(2, field(1, "/healthz") + field(2, int_or_string("http"))))  # livenessProbe.httpGet
          + field(2, 3) + field(3, 1)),
    field(11, field(1, field(3, field(1, int_or_string(8080)))) + field(4, 5)),  # readinessProbe.tcpSocket
    field(13, ""), field(14, "IfNotPresent"), field(16, False), field(17, False), field(18, False),
)


def test_deployment_with_a_full_pod_template():
    template = field(1, b"") + field(2, field(2, CONTAINER) + field(3, "Always") + field(11, False))
    spec = field(1, 2) + field(2, entries(1, {"app": "web"})) + field(3, template) \
        + field(4, field(1, "RollingUpdate") + field(2, field(1, int_or_string("25%")) + field(2, int_or_string(1))))
    obj = decode_object(unknown("Deployment", object_meta("web", labels={"app": "web"}) + field(2, spec)
                                + field(3, b""), api_version="apps/v1"))
    assert obj["spec"] == {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {}, "spec": {"restartPolicy": "Always", "containers": [{
            "name": "web", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g"],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "MODE", "value": "edge"}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 3,
                              "timeoutSeconds": 1},
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
            "imagePullPolicy": "IfNotPresent",
        }]}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
    }
    assert obj["status"] == {} and obj["metadata"] == {"name": "web", "labels": {"app": "web"}}


def test_pointer_zeroes_are_kept_and_non_pointer_zeroes_left_out():
    """replicas is *int32 (0 kept), a Job's backoffLimit too; a Service port's nodePort is a non-pointer omitempty."""
    deployment = decode_object(unknown("Deployment", object_meta("d") + field(2, field(1, 0)), api_version="apps/v1"))
    assert deployment["spec"] == {"replicas": 0}
    job_spec = field(7, 0) + field(6, field(1, b"") + field(2, field(3, "Never")))
    job = decode_object(unknown("Job", object_meta("j") + field(2, job_spec), api_version="batch/v1"))
    assert job["spec"] == {"backoffLimit": 0, "template": {"metadata": {}, "spec": {"restartPolicy": "Never"}}}


def test_service_with_an_int_or_string_target_port():
    port = field(1, "80-8080") + field(2, "TCP") + field(3, 80) + field(4, int_or_string(8080)) + field(5, 0)
    spec = field(1, port) + entries(2, {"app": "x"}) + field(3, "") + field(4, "ClusterIP")
    obj = decode_object(unknown("Service", object_meta("x") + field(2, spec) + field(3, b"")))
    assert obj["spec"] == {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                           "selector": {"app": "x"}, "type": "ClusterIP"}


def test_malformed_nested_field_names_its_path():
    spec = field(3, field(2, field(2, field(1, "web") + field(6, field(3, "not a number")))))
    with pytest.raises(ValueError, match=r"spec\.template\.spec\.containers\.ports\.containerPort"):
        decode_object(unknown("Deployment", object_meta("d") + field(2, spec), api_version="apps/v1"))


def test_the_schema_covers_every_served_kind():
    """``ops/gen_protobuf.py`` was run since the served kinds last changed."""
    kinds = json.loads(gzip.decompress(protobuf.SCHEMA_FILE.read_bytes()))["kinds"]
    for served in SERVED:
        if served.group == "metrics.k8s.io":
            continue  # read-only: nothing sends its objects
        for resource in served.resources:
            if "/" not in resource.name:
                api_version = f"{served.group}/{served.version}" if served.group else served.version
                assert f"{api_version}/{resource.kind}" in kinds, "run ops/gen_protobuf.py"
