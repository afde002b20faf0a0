from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeworkers.k8s.pod import default_pod
from edgeworkers.k8s.podvalidation import POD_UPDATE_FORBIDDEN
from edgeworkers.k8s.validation import (
    validate_configmap,
    validate_configmap_update,
    validate_node,
    validate_object_meta,
    validate_pod,
    validate_pod_update,
    validate_secret,
    validate_secret_update,
)

RFC1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
RFC1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
ENV_NAME = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and "
    "must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
    "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
QUALIFIED_NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def pod() -> dict[str, Any]:
    return default_pod(
        {
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "busybox:1.28",
                        "ports": [{"containerPort": 80, "name": "http"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "livenessProbe": {"httpGet": {"port": "http"}},
                    }
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        }
    )


def messages(errors: list) -> list[str]:
    return [e.message() for e in errors]


def test_a_valid_pod_has_no_errors() -> None:
    assert validate_pod(pod()) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


_DELETE = object()
C0 = "spec.containers.0"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set(f"{C0}.name", "Web_1"), [f'spec.containers[0].name: Invalid value: "Web_1": {RFC1123_LABEL}']),
        (_set("spec.containers", []), ["spec.containers: Required value"]),
        (
            _set("spec.restartPolicy", "Sometimes"),
            ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"'],
        ),
        (_set("metadata.name", "Web"), [f'metadata.name: Invalid value: "Web": {RFC1123_SUBDOMAIN}']),
        (_set("metadata.name", _DELETE), ["metadata.name: Required value: name or generateName is required"]),
        (_set("metadata.namespace", "my_ns"), ['metadata.namespace: Invalid value: "my_ns": ' + RFC1123_LABEL]),
        (_set(f"{C0}.image", ""), ["spec.containers[0].image: Required value"]),
        (
            _set(f"{C0}.imagePullPolicy", "Sometimes"),
            [
                (
                    'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
                    '"Always", "IfNotPresent", "Never"'
                )
            ],
        ),
        (
            _set(f"{C0}.ports.0", {"containerPort": 70000, "name": "-http", "protocol": "TCP"}),
            [
                'spec.containers[0].ports[0].name: Invalid value: "-http": must not begin or end with a hyphen',
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            _set(f"{C0}.ports.0.name", "this-is-far-too-long"),
            [
                'spec.containers[0].ports[0].name: Invalid value: "this-is-far-too-long": must be no more than 15 characters'
            ],
        ),
        (
            _set(f"{C0}.env", [{"name": "1X", "value": "a"}]),
            [f'spec.containers[0].env[0].name: Invalid value: "1X": {ENV_NAME}'],
        ),
        (
            _set(
                f"{C0}.env", [{"name": "X", "value": "a", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]
            ),
            ['spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty'],
        ),
        (
            _set(f"{C0}.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
            ['spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'],
        ),
        (
            _set(f"{C0}.resources", {"requests": {"memory": "1Gb"}}),
            [
                (
                    'spec.containers[0].resources.requests[memory]: Invalid value: "1Gb": quantities must match the '
                    "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                )
            ],
        ),
        (
            _set(f"{C0}.resources", {"limits": {"gpu": "1"}}),
            [
                'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers'
            ],
        ),
        (
            _set(f"{C0}.volumeMounts.0", {"name": "nope", "mountPath": ""}),
            [
                'spec.containers[0].volumeMounts[0].name: Not found: "nope"',
                "spec.containers[0].volumeMounts[0].mountPath: Required value",
            ],
        ),
        (
            _set(
                "spec.volumes",
                [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}],
            ),
            [
                "spec.volumes[1].hostPath: Forbidden: may not specify more than 1 volume type",
                'spec.volumes[1].name: Duplicate value: "data"',
            ],
        ),
        (
            _set("spec.volumes.0", {"name": "data", "configMap": {"defaultMode": 1000}}),
            [
                "spec.volumes[0].configMap.name: Required value",
                (
                    "spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 "
                    "(octal), both inclusive"
                ),
                'spec.containers[0].volumeMounts[0].name: Not found: "data"',
            ],
        ),
        (
            _set("spec.volumes.0", {"name": "data"}),
            [
                "spec.volumes[0]: Required value: must specify a volume type",
                'spec.containers[0].volumeMounts[0].name: Not found: "data"',
            ],
        ),
        (
            _set(
                f"{C0}.livenessProbe",
                {
                    "exec": {"command": ["true"]},
                    "tcpSocket": {"port": 80},
                    "successThreshold": 2,
                    "periodSeconds": -1,
                    "timeoutSeconds": 1,
                    "failureThreshold": 3,
                },
            ),
            [
                "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
                "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            ],
        ),
        (
            _set(f"{C0}.readinessProbe", {"exec": {"command": ["true"]}, "successThreshold": 3}),
            [],
        ),
        (
            _set(f"{C0}.startupProbe", {"successThreshold": 2}),
            [
                "spec.containers[0].startupProbe: Required value: must specify a handler type",
                "spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1",
            ],
        ),
        (
            _set("spec.terminationGracePeriodSeconds", -1),
            ["spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            _set("metadata.labels", {"app": "x" * 64}),
            [f'metadata.labels: Invalid value: "{"x" * 64}": must be no more than 63 characters'],
        ),
        (_set("metadata.labels", {"app": "-x"}), [f'metadata.labels: Invalid value: "-x": {LABEL_VALUE}']),
        (
            _set("metadata.labels", {"bad key!": "x"}),
            [f'metadata.labels: Invalid value: "bad key!": {QUALIFIED_NAME_PART}'],
        ),
        (
            _set("metadata.annotations", {"a": "x" * (256 * 1024)}),
            ["metadata.annotations: Too long: must have at most 262144 bytes"],
        ),
        (
            _set("spec.initContainers", [{"name": "web", "image": "busybox", "terminationMessagePolicy": "File"}]),
            ['spec.initContainers[0].name: Duplicate value: "web"'],
        ),
    ],
)
def test_pod_errors_match_kubernetes(change: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    obj = pod()
    change(obj)
    assert messages(validate_pod(obj)) == expected


def test_every_error_is_reported_at_once() -> None:
    obj = pod()
    obj["metadata"]["name"] = "Bad"
    obj["spec"]["restartPolicy"] = "Sometimes"
    obj["spec"]["containers"].append({"name": "web", "image": ""})
    fields = [e.field for e in validate_pod(obj)]
    assert fields == ["metadata.name", "spec.containers[1].image", "spec.containers[1].name", "spec.restartPolicy"]


def test_generate_name_stands_in_for_a_missing_name() -> None:
    assert validate_object_meta({"generateName": "web-", "namespace": "default"}, namespaced=True) == []
    assert messages(validate_object_meta({"name": "n", "namespace": "default"}, namespaced=False)) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]


def test_docs_manifests_are_valid() -> None:
    for manifest in yaml.safe_load_all((Path(__file__).parent / "docs_manifests.yaml").read_text()):
        manifest["metadata"].setdefault("namespace", "default")
        assert messages(validate_pod(default_pod(manifest))) == [], manifest["metadata"]["name"]


# --- updates --------------------------------------------------------------------------------------------


def test_pod_update_may_change_images_and_add_tolerations() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.36"
    new["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    new["metadata"]["labels"] = {"app": "other"}
    assert validate_pod_update(old, new) == []


@pytest.mark.parametrize(
    "change",
    [
        _set(f"{C0}.command", ["sleep", "1"]),
        _set(f"{C0}.ports.0.containerPort", 81),
        _set("spec.restartPolicy", "Never"),
        _set("spec.nodeName", "other"),
    ],
)
def test_pod_update_of_other_spec_fields_is_forbidden(change: Callable[[dict[str, Any]], None]) -> None:
    old = pod()
    new = copy.deepcopy(old)
    change(new)
    assert messages(validate_pod_update(old, new)) == [f"spec: Forbidden: {POD_UPDATE_FORBIDDEN}"]
    assert POD_UPDATE_FORBIDDEN == (
        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
    )


def test_pod_update_cannot_add_containers_or_rename_or_drop_tolerations() -> None:
    old = pod()
    old["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "two", "image": "busybox"})
    new["metadata"]["name"] = "renamed"
    new["spec"]["tolerations"] = []
    assert messages(validate_pod_update(old, new)) == [
        'metadata.name: Invalid value: "renamed": field is immutable',
        "spec.containers: Forbidden: pod updates may not add or remove containers",
    ]
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = []
    assert messages(validate_pod_update(old, new)) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    ]


def test_active_deadline_may_only_shrink() -> None:
    old = pod()
    old["spec"]["activeDeadlineSeconds"] = 100
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 50
    assert validate_pod_update(old, new) == []
    new["spec"]["activeDeadlineSeconds"] = 200
    assert messages(validate_pod_update(old, new)) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
    ]


# --- configmaps, secrets, nodes -------------------------------------------------------------------------


def configmap(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"}, **fields}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"data": {"game.properties": "x", "ui_key-1": "y"}}, []),
        ({"data": {"bad/key": "x"}}, [f'data[bad/key]: Invalid value: "bad/key": {CONFIG_KEY}']),
        ({"data": {"..": "x"}}, ["data[..]: Invalid value: \"..\": must not be '..'"]),
        (
            {"data": {"k": "x"}, "binaryData": {"k": "eA=="}},
            [
                'data[k]: Invalid value: "k": duplicate of key present in binaryData',
                'binaryData[k]: Invalid value: "k": duplicate of key present in data',
            ],
        ),
        ({"data": {"big": "x" * (1024 * 1024 + 1)}}, ["[]: Too long: must have at most 1048576 bytes"]),
    ],
)
def test_configmap_validation(fields: dict[str, Any], expected: list[str]) -> None:
    assert messages(validate_configmap(configmap(**fields))) == expected


def test_immutable_configmap_data_cannot_change() -> None:
    old = configmap(data={"k": "v"}, immutable=True)
    assert messages(validate_configmap_update(old, configmap(data={"k": "w"}, immutable=True))) == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]
    assert validate_configmap_update(configmap(data={"k": "v"}), configmap(data={"k": "w"})) == []


def secret(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "type": "Opaque",
        **fields,
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"data": {"username": b64("admin")}}, []),
        ({"data": {"a b": b64("x")}}, [f'data[a b]: Invalid value: "a b": {CONFIG_KEY}']),
        ({"data": {"k": "not base64!"}}, ['data[k]: Invalid value: "<secret contents redacted>": illegal base64 data']),
        ({"data": {"k": b64("x" * (1024 * 1024 + 1))}}, ["data: Too long: must have at most 1048576 bytes"]),
        ({"type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}}, ["data[tls.key]: Required value"]),
    ],
)
def test_secret_validation(fields: dict[str, Any], expected: list[str]) -> None:
    assert messages(validate_secret(secret(**fields))) == expected


def test_secret_type_is_immutable() -> None:
    assert messages(
        validate_secret_update(secret(), secret(type="kubernetes.io/basic-auth", data={"username": b64("u")}))
    ) == ['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']


def test_node_validation() -> None:
    node = {
        "metadata": {"name": "edge-1"},
        "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]},
        "status": {"capacity": {"cpu": "2", "memory": "bad"}},
    }
    assert messages(validate_node(node)) == [
        (
            'spec.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", '
            '"PreferNoSchedule", "NoExecute"'
        ),
        (
            'status.capacity[memory]: Invalid value: "bad": quantities must match the regular expression '
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        ),
    ]
    assert validate_node({"metadata": {"name": "edge-1"}}) == []


ENV_FIELD_PATHS = (
    '"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
    '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"'
)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            _set(
                "spec.volumes.0",
                {
                    "name": "data",
                    "downwardAPI": {
                        "items": [{"path": "/abs", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.nme"}}]
                    },
                },
            ),
            [
                'spec.volumes[0].downwardAPI.path: Invalid value: "/abs": must be a relative path',
                (
                    'spec.volumes[0].downwardAPI.fieldRef.fieldPath: Invalid value: "metadata.nme": error converting '
                    "fieldPath: field label not supported: metadata.nme"
                ),
                'spec.containers[0].volumeMounts[0].name: Not found: "data"',
            ],
        ),
        (
            _set("spec.volumes.0", {"name": "data", "secret": {"secretName": "s"}, "downwardAPI": {}}),
            [
                "spec.volumes[0].downwarAPI: Forbidden: may not specify more than 1 volume type",
                'spec.containers[0].volumeMounts[0].name: Not found: "data"',
            ],
        ),
        (
            _set(
                "spec.volumes.0",
                {
                    "name": "data",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "a", "items": [{"key": "k", "path": "p"}]}},
                            {"secret": {"name": "b", "items": [{"key": "k", "path": "p"}]}},
                        ]
                    },
                },
            ),
            [
                'spec.volumes[0].projected: Invalid value: "b": conflicting duplicate paths',
                'spec.containers[0].volumeMounts[0].name: Not found: "data"',
            ],
        ),
        (
            _set(
                f"{C0}.env",
                [{"name": "L", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}}}],
            ),
            [
                (
                    'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "metadata.labels": '
                    f"supported values: {ENV_FIELD_PATHS}"
                )
            ],
        ),
        (
            _set(
                f"{C0}.env",
                [{"name": "L", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['app']"}}}],
            ),
            [],
        ),
        (
            _set(
                f"{C0}.env",
                [{"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1k"}}}],
            ),
            [
                (
                    'spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: "limits.cpu": only '
                    "divisor's values 1m and 1 are supported with the cpu resource"
                )
            ],
        ),
        (
            _set(f"{C0}.env", [{"name": "C", "valueFrom": {}}]),
            [
                (
                    'spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
                    "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
                )
            ],
        ),
        (
            _set(f"{C0}.envFrom", [{"prefix": "P_"}]),
            ['spec.containers[0].envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`'],
        ),
        (
            _set(f"{C0}.volumeMounts.0.subPath", "/abs"),
            ['spec.containers[0].volumeMounts.subPath: Invalid value: "/abs": must be a relative path'],
        ),
        (
            _set(f"{C0}.volumeMounts.0.mountPropagation", "Bidirectional"),
            [
                (
                    "spec.containers[0].volumeMounts.mountPropagation: Forbidden: Bidirectional mount propagation is "
                    "available only to privileged containers"
                )
            ],
        ),
        (
            _set(f"{C0}.livenessProbe.httpGet.httpHeaders", [{"name": "Bad Header", "value": "x"}]),
            [
                (
                    'spec.containers[0].livenessProbe.httpGet.httpHeaders: Invalid value: "Bad Header": a valid HTTP '
                    "header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for "
                    "validation is '[-A-Za-z0-9]+')"
                )
            ],
        ),
        (
            _set(f"{C0}.lifecycle", {"preStop": {"sleep": {"seconds": 60}}}),
            [
                (
                    "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 60: must be greater than 0 and less than "
                    "terminationGracePeriodSeconds (30)"
                )
            ],
        ),
        (
            _set(
                "spec.initContainers",
                [{"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}],
            ),
            [
                (
                    "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without "
                    "restartPolicy=Always"
                )
            ],
        ),
        (
            _set("spec.hostNetwork", True),
            [
                (
                    "spec.containers[0].ports[0].hostPort: Invalid value: 0: must match `containerPort` when "
                    "`hostNetwork` is true"
                )
            ],
        ),
        (
            _set(
                "spec.tolerations",
                [{"operator": "Equal", "value": "v"}, {"key": "k", "operator": "Exists", "value": "v"}],
            ),
            [
                (
                    'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, '
                    'which means "match all values and all keys"'
                ),
                (
                    'spec.tolerations[1].operator: Invalid value: {"key":"k","operator":"Exists","value":"v"}: '
                    "value must be empty when `operator` is 'Exists'"
                ),
            ],
        ),
        (
            _set("spec.dnsPolicy", "None"),
            ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"],
        ),
        (
            _set("spec.dnsPolicy", "Cluster"),
            [
                (
                    'spec.dnsPolicy: Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", '
                    '"ClusterFirst", "Default", "None"'
                )
            ],
        ),
        (
            _set(f"{C0}.securityContext", {"runAsUser": -1}),
            [
                "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"
            ],
        ),
    ],
)
def test_more_pod_rules_match_kubernetes(change: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    obj = pod()
    change(obj)
    assert messages(validate_pod(obj)) == expected


def test_host_network_pods_default_host_ports_to_container_ports() -> None:
    raw = pod()
    raw["spec"]["hostNetwork"] = True
    defaulted = default_pod(raw)
    assert defaulted["spec"]["containers"][0]["ports"][0]["hostPort"] == 80
    assert validate_pod(defaulted) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("spec.securityContext", {"seccompProfile": {"type": "Localhost"}}),
         ["spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is "
          "Localhost"]),
        (_set("spec.securityContext", {"seccompProfile": {"type": "Localhost", "localhostProfile": "/x/../y.json"}}),
         ['spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/x/../y.json": must be a relative '
          "path",
          'spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/x/../y.json": must not contain '
          "'..'"]),
        (_set(f"{C0}.securityContext", {"seccompProfile": {"type": "Strict"}}),
         ['spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: '
          '"Localhost", "RuntimeDefault", "Unconfined"']),
        (_set(f"{C0}.securityContext", {"appArmorProfile": {}}),
         ["spec.containers[0].securityContext.appArmorProfile.type: Required value: type is required when "
          "appArmorProfile is set"]),
        (_set("spec.securityContext", {"appArmorProfile": {"type": "RuntimeDefault", "localhostProfile": "x"}}),
         ['spec.securityContext.appArmorProfile.localhostProfile: Invalid value: "x": can only be set when AppArmor '
          "type is Localhost"]),
        (_set("spec.securityContext", {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                                                   {"name": "Kernel!", "value": "1"},
                                                   {"name": "kernel.shm_rmid_forced", "value": "0"}]}),
         ['spec.securityContext.sysctls[1].name: Invalid value: "Kernel!": must have at most 253 characters and match '
          r"regex ([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?",
          'spec.securityContext.sysctls[2].name: Duplicate value: "kernel.shm_rmid_forced"']),
        (_set("spec.hostAliases", [{"ip": "10.0.0.x", "hostnames": ["ok.example", "Bad\nName"]}]),
         ['spec.hostAliases[0].ip: Invalid value: "10.0.0.x": must be a valid IP address, (e.g. 10.9.8.7 or '
          "2001:db8::ffff)",
          'spec.hostAliases[0].hostnames[1]: Invalid value: "Bad\\nName": a lowercase RFC 1123 subdomain must consist '
          "of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
          "(e.g. 'example.com', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    ],
)  # fmt: skip
def test_security_profiles_sysctls_and_host_aliases_match_kubernetes(
    change: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    obj = pod()
    change(obj)
    assert messages(validate_pod(obj)) == expected
