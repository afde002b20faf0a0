"""Pod spec -> runtime configs, and the spec hash that decides recreation."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeworkers.k8s.pod import Container
from edgeworkers.pods.convert import (
    ConfigError,
    container_config,
    container_hash,
    expand,
    host_dirs,
    milli_cpu_to_shares,
    sandbox_config,
    sandbox_hash,
)
from edgeworkers.runtime.types import Mount
from tests.unit.pods.podkit import container, make_pod

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
    assert host_dirs(pod, DATA) == [Path(scratch), Path(f"{scratch}/logs")]


def test_requests_default_to_limits_and_no_request_gets_minimum_shares() -> None:
    limited = make_pod(containers=[container("app", resources={"limits": {"cpu": "1"}})])
    assert container_config(limited, limited.spec.containers[0], DATA).cpu_shares == 1024
    plain = make_pod()
    config = container_config(plain, plain.spec.containers[0], DATA)
    assert (config.cpu_shares, config.cpu_limit_nano, config.memory_limit_bytes) == (2, None, None)


def test_the_pod_security_context_is_the_default_user() -> None:
    pod = make_pod(securityContext={"runAsUser": 7, "runAsGroup": 8})
    assert container_config(pod, pod.spec.containers[0], DATA).user == "7:8"


@pytest.mark.parametrize(
    ("fields", "volumes", "message"),
    [
        ({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}, [],
         "env K: valueFrom (secretKeyRef) is not supported yet"),
        ({"envFrom": [{"configMapRef": {"name": "cm"}}]}, [], "envFrom (configMapRef) is not supported yet"),
        ({"volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}, [{"name": "cfg", "configMap": {"name": "c"}}],
         'volume "cfg": configMap volumes are not supported yet'),
        ({"volumeMounts": [{"name": "s", "mountPath": "/s"}]}, [{"name": "s", "secret": {"secretName": "x"}}],
         'volume "s": secret volumes are not supported yet'),
        ({"volumeMounts": [{"name": "d", "mountPath": "/d"}]}, [{"name": "d", "downwardAPI": {"items": []}}],
         'volume "d": downwardAPI volumes are not supported yet'),
        ({"volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "../x"}]}, [{"name": "v", "emptyDir": {}}],
         "subPath '../x' must be a relative path inside it"),
    ],
)  # fmt: skip
def test_unsupported_sources_raise_config_error_naming_them(fields: dict, volumes: list, message: str) -> None:
    pod = make_pod(containers=[container("app", **fields)], volumes=volumes)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        container_config(pod, pod.spec.containers[0], DATA)


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
