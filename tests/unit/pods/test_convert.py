"""Pod spec -> runtime configs, and the spec hash that decides recreation."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.k8s.pod import Container
from edgeworkers.pods.convert import (
    ConfigError,
    container_config,
    container_env,
    container_hash,
    expand,
    lexical_volumes,
    milli_cpu_to_shares,
    sandbox_config,
    sandbox_hash,
)
from edgeworkers.runtime.types import Mount
from edgeworkers.volumes.downward import PodFacts
from tests.unit.pods.podkit import container, make_pod
from tests.unit.volumes.sources import FakeSources

DATA = Path("/var/lib/edgeworkers")


@pytest.mark.parametrize(
    ("milli", "shares"), [(0, 2), (1, 2), (2, 2), (10, 10), (250, 256), (500, 512), (1000, 1024), (300_000, 262_144)]
)
def test_milli_cpu_to_shares(milli: int, shares: int) -> None:
    assert milli_cpu_to_shares(milli) == shares


def test_a_full_container_converts() -> None:
    pod = make_pod(
        containers=[
            container(
                "app",
                command=["sh", "-c"],
                args=["echo $A"],
                env=[{"name": "A", "value": "1"}, {"name": "EMPTY"}],
                workingDir="/srv",
                resources={"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "32Mi"}},
                securityContext={"runAsUser": 1000, "privileged": True},
                volumeMounts=[
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "host", "mountPath": "/host", "readOnly": True},
                    {"name": "scratch", "mountPath": "/logs", "subPath": "logs"},
                ],
            )
        ],
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/etc"}}],
    )
    config = container_config(pod, pod.spec.containers[0], DATA, restart_count=3)
    scratch = "/var/lib/edgeworkers/pods/uid-1/volumes/scratch"
    assert (config.name, config.image, config.command, config.args) == ("app", "busybox", ["sh", "-c"], ["echo $A"])
    assert config.env == {"A": "1", "EMPTY": ""}
    assert config.working_dir == "/srv"
    assert (config.cpu_limit_nano, config.cpu_shares) == (500_000_000, 256)
    assert (config.memory_limit_bytes, config.memory_request_bytes) == (64 * 2**20, 32 * 2**20)
    assert (config.user, config.privileged) == ("1000", True)
    assert config.mounts == [
        Mount(scratch, "/scratch"), Mount("/etc", "/host", read_only=True), Mount(f"{scratch}/logs", "/logs")
    ]  # fmt: skip
    assert (config.restart_count, config.spec_hash, config.is_init) == (
        3,
        container_hash(pod.spec.containers[0]),
        False,
    )
    assert {name: ready.path for name, ready in lexical_volumes(pod, DATA).items()} == {
        "scratch": Path(scratch), "host": Path("/etc")
    }


def test_requests_default_to_limits_and_no_request_gets_minimum_shares() -> None:
    limited = make_pod(containers=[container("app", resources={"limits": {"cpu": "1"}})])
    assert container_config(limited, limited.spec.containers[0], DATA).cpu_shares == 1024
    plain = make_pod()
    config = container_config(plain, plain.spec.containers[0], DATA)
    assert (config.cpu_shares, config.cpu_limit_nano, config.memory_limit_bytes) == (2, None, None)


def test_the_pod_security_context_is_the_default_user() -> None:
    pod = make_pod(securityContext={"runAsUser": 7, "runAsGroup": 8})
    assert container_config(pod, pod.spec.containers[0], DATA).user == "7:8"


def test_host_namespaces_and_capabilities_reach_the_container_config() -> None:
    caps = {"securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}
    pod = make_pod(containers=[container("app", **caps)], hostPID=True, hostIPC=True)
    config = container_config(pod, pod.spec.containers[0], DATA)
    assert (config.cap_add, config.cap_drop, config.host_pid, config.host_ipc) == (["NET_ADMIN"], ["ALL"], True, True)
    assert sandbox_config(pod).host_ipc and sandbox_hash(pod) != sandbox_hash(make_pod())
    plain = make_pod()
    assert container_config(plain, plain.spec.containers[0], DATA).cap_add == []


SOURCES = FakeSources(
    configmaps={"app-config": {"LOG_LEVEL": "debug", "MODE": "edge", "bad key": "x", "1ST": "y"}},
    secrets={"creds": {"password": b"s3cret", "user": b"admin"}},
)


@pytest.mark.parametrize(
    ("fields", "volumes", "message"),
    [
        ({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}, [],
         'secret "s" not found'),
        ({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "nope"}}}]}, [],
         "couldn't find key nope in ConfigMap default/app-config"),
        ({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}}]}, [],
         "couldn't find key nope in Secret default/creds"),
        ({"envFrom": [{"configMapRef": {"name": "absent"}}]}, [], 'configmap "absent" not found'),
        ({"env": [{"name": "K", "valueFrom": {"fileKeyRef": {"path": "x", "key": "k", "volumeName": "v"}}}]}, [],
         "env K: valueFrom (fileKeyRef) is not supported on this node"),
        ({"volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}, [{"name": "cfg", "configMap": {"name": "c"}}],
         'volume "cfg": configMap volumes are not supported yet'),
        ({"volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "../x"}]}, [{"name": "v", "emptyDir": {}}],
         "subPath '../x' must not contain '..'"),
        ({"volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "/etc"}]}, [{"name": "v", "emptyDir": {}}],
         "subPath '/etc' must be a relative path"),
        ({"env": [{"name": "D", "value": ".."}],
          "volumeMounts": [{"name": "v", "mountPath": "/v", "subPathExpr": "$(D)/x"}]}, [{"name": "v", "emptyDir": {}}],
         "subPath '../x' must not contain '..'"),
        ({"volumeMounts": [{"name": "nope", "mountPath": "/n"}]}, [], 'volume "nope" mounted at /n is not in'),
    ],
)  # fmt: skip
def test_what_cannot_be_had_raises_config_error_naming_it(fields: dict, volumes: list, message: str) -> None:
    pod = make_pod(containers=[container("app", **fields)], volumes=volumes)
    with pytest.raises(ConfigError) as raised:
        container_config(pod, pod.spec.containers[0], DATA, sources=SOURCES)
    assert message in str(raised.value)


def env_of(fields: dict, facts: PodFacts | None = None, **pod: object) -> dict[str, str]:
    spec = make_pod(containers=[container("app", **fields)], **pod)
    env, _ = container_env(spec, spec.spec.containers[0], SOURCES, facts or PodFacts("192.0.2.1", ("10.88.0.7",),
                                                                                      4000, 2**30))
    return env


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"env": [{"name": "L", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "LOG_LEVEL"}}}]},
         {"L": "debug"}),
        ({"env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}]},
         {"P": "s3cret"}),
        ({"env": [{"name": "O", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}}},
                  {"name": "Q", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "no", "optional": True}}}]},
         {}),
        ({"envFrom": [{"configMapRef": {"name": "app-config"}}]}, {"LOG_LEVEL": "debug", "MODE": "edge"}),
        ({"envFrom": [{"secretRef": {"name": "creds"}, "prefix": "DB_"}]}, {"DB_password": "s3cret", "DB_user": "admin"}),
        ({"envFrom": [{"configMapRef": {"name": "gone", "optional": True}}]}, {}),
        # later sources win, env over envFrom; a plain value expands what is defined before it, valueFrom never
        ({"envFrom": [{"configMapRef": {"name": "app-config"}}, {"secretRef": {"name": "creds"}, "prefix": "MODE"}],
          "env": [{"name": "MODE", "value": "$(LOG_LEVEL)-$(MODEuser)-$(LATER)"}, {"name": "LATER", "value": "x"}]},
         {"LOG_LEVEL": "debug", "MODE": "debug-admin-$(LATER)", "MODEpassword": "s3cret", "MODEuser": "admin",
          "LATER": "x"}),
        ({"env": [{"name": "A", "value": "$(B)"},
                  {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "MODE"}}},
                  {"name": "C", "value": "$(B)"}]}, {"A": "$(B)", "B": "edge", "C": "edge"}),
    ],
)  # fmt: skip
def test_env_from_configmaps_and_secrets(fields: dict, expected: dict) -> None:
    assert env_of(fields) == expected


def field(path: str) -> dict:
    return {"name": "V", "valueFrom": {"fieldRef": {"fieldPath": path}}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "web"), ("metadata.namespace", "default"), ("metadata.uid", "uid-1"),
        ("metadata.labels['app']", "web"), ("metadata.labels['none']", ""),
        ("metadata.annotations['team']", "edge"), ("spec.nodeName", "node-a"), ("spec.serviceAccountName", "robot"),
        ("status.podIP", "10.88.0.7"), ("status.podIPs", "10.88.0.7"), ("status.hostIP", "192.0.2.1"),
        ("status.hostIPs", "192.0.2.1"),
    ],
)  # fmt: skip
def test_env_field_refs(path: str, expected: str) -> None:
    pod = {"nodeName": "node-a", "serviceAccountName": "robot"}
    spec = make_pod(containers=[container("app", env=[field(path)])], **pod)
    spec.metadata.annotations = {"team": "edge"}
    env, _ = container_env(spec, spec.spec.containers[0], SOURCES, PodFacts("192.0.2.1", ("10.88.0.7",), 4000, 2**30))
    assert env == {"V": expected}


def resource(name: str, divisor: str | None = None, container_name: str | None = None) -> dict:
    ref: dict = {"resource": name}
    if divisor:
        ref["divisor"] = divisor
    if container_name:
        ref["containerName"] = container_name
    return {"name": "V", "valueFrom": {"resourceFieldRef": ref}}


@pytest.mark.parametrize(
    ("resources", "ref", "expected"),
    [
        ({"limits": {"cpu": "500m"}}, resource("limits.cpu"), "1"),  # rounded up to whole CPUs
        ({"limits": {"cpu": "500m"}}, resource("limits.cpu", "1m"), "500"),
        ({"limits": {"cpu": "1500m"}}, resource("requests.cpu", "1m"), "1500"),  # requests default to limits
        ({}, resource("limits.cpu", "1m"), "4000"),  # no limit: the node's allocatable
        ({}, resource("requests.cpu"), "0"),
        ({"limits": {"memory": "64Mi"}}, resource("limits.memory"), str(64 * 2**20)),
        ({"limits": {"memory": "64Mi"}}, resource("limits.memory", "1Mi"), "64"),
        ({"limits": {"memory": "100M"}}, resource("limits.memory", "1Mi"), "96"),  # 95.37 rounded up
        ({}, resource("limits.memory", "1Gi"), "1"),
        ({"requests": {"memory": "1Gi"}}, resource("requests.memory", "1Mi"), "1024"),
    ],
)  # fmt: skip
def test_env_resource_field_refs(resources: dict, ref: dict, expected: str) -> None:
    assert env_of({"env": [ref], "resources": resources}) == {"V": expected}


def test_resource_field_refs_may_name_another_container() -> None:
    other = container("side", resources={"limits": {"memory": "32Mi"}})
    spec = make_pod(containers=[container("app", env=[resource("limits.memory", "1Mi", "side")]), other])
    env, _ = container_env(spec, spec.spec.containers[0], SOURCES, PodFacts("", (), 1000, 2**30))
    assert env == {"V": "32"}


def test_invalid_env_from_keys_are_skipped_and_reported() -> None:
    spec = make_pod(containers=[container("app", envFrom=[{"configMapRef": {"name": "app-config"}}])])
    env, skipped = container_env(spec, spec.spec.containers[0], SOURCES)
    assert sorted(skipped) == ["1ST", "bad key"]
    assert "1ST" not in env and "LOG_LEVEL" in env


def test_secret_values_never_appear_in_errors() -> None:
    env = [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}}]
    spec = make_pod(containers=[container("app", env=env)])
    with pytest.raises(ConfigError) as raised:
        container_config(spec, spec.spec.containers[0], DATA, sources=SOURCES)
    assert "s3cret" not in str(raised.value) and "admin" not in str(raised.value)


def test_sub_path_expr_expands_env_and_mounts_are_read_only_when_the_volume_says() -> None:
    pod = make_pod(containers=[container(
        "app", env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        volumeMounts=[{"name": "logs", "mountPath": "/logs", "subPathExpr": "$(POD)/out"}],
    )], volumes=[{"name": "logs", "emptyDir": {}}])  # fmt: skip
    config = container_config(pod, pod.spec.containers[0], DATA, sources=SOURCES)
    assert config.mounts == [Mount("/var/lib/edgeworkers/pods/uid-1/volumes/logs/web/out", "/logs")]


def hash_of(**fields: object) -> str:
    return container_hash(Container.from_dict(container("app", **fields)))


def test_the_hash_is_stable_and_ignores_what_does_not_recreate() -> None:
    base = hash_of(command=["sleep", "1"])
    assert base == hash_of(command=["sleep", "1"])
    assert base == hash_of(command=["sleep", "1"], env=[], readinessProbe={"exec": {"command": ["true"]}})
    assert base == hash_of(command=["sleep", "1"], imagePullPolicy="Always", terminationMessagePath="/x")


@pytest.mark.parametrize(
    "change",
    [{"image": "busybox:1.28"}, {"command": ["sleep", "2"]}, {"args": ["x"]}, {"env": [{"name": "A", "value": "1"}]},
     {"workingDir": "/w"}, {"resources": {"limits": {"cpu": "1"}}}, {"securityContext": {"privileged": True}},
     {"ports": [{"containerPort": 80}]}, {"volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
)  # fmt: skip
def test_each_recreating_field_changes_the_hash(change: dict) -> None:
    assert hash_of(command=["sleep", "1"]) != hash_of(**{"command": ["sleep", "1"], **change})


def test_defaulted_requests_hash_like_undefaulted() -> None:
    assert hash_of(resources={"limits": {"cpu": "1"}}) == hash_of(
        resources={"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    )


def test_sandbox_config_and_hash() -> None:
    pod = make_pod(labels={"app": "web"})
    config = sandbox_config(pod)
    assert (config.pod.key, config.pod.uid, config.host_network, config.hostname) == (
        "default/web",
        "uid-1",
        False,
        "web",
    )
    assert config.labels == {"app": "web"}
    assert config.spec_hash == sandbox_hash(pod) != sandbox_hash(make_pod(hostNetwork=True))
    assert sandbox_hash(pod) == sandbox_hash(make_pod(labels={"other": "label"}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1y22z"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$A", "$A"),
        ("$(A", "$(A"),
        ("cost: 5$", "cost: 5$"),
        ("$()", "$()"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "22"}) == expected


def test_env_and_command_references_are_expanded() -> None:
    env = [{"name": "NAME", "value": "world"}, {"name": "GREETING", "value": "hello $(NAME)"}]
    pod = make_pod(
        containers=[container("app", env=env, command=["echo", "$(GREETING)"], args=["$(NAME)!", "$$(NAME)"])]
    )
    config = container_config(pod, pod.spec.containers[0], DATA)
    assert config.env == {"NAME": "world", "GREETING": "hello world"}
    assert (config.command, config.args) == (["echo", "hello world"], ["world!", "$(NAME)"])
