"""The container spec hash is pinned: an upgrade of the agent adopts the running containers only while the hash of
an unchanged pod stays what the earlier version labelled its containers with (``io.edgeworkers.container.hash``).
A refactor that changes a hash here would restart every pod of every node on upgrade (kubelet was bitten by exactly
this): change these values only with a migration that keeps the old containers.
"""
from __future__ import annotations

from typing import Any

import pytest

from edgeworkers.pods.convert import container_hash, sandbox_hash
from edgeworkers.pods.desired import decode_pod

# Known pods, as kubectl or the cloud would hand them to the node.
PODS: dict[str, dict[str, Any]] = {
    "busybox-sleep": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "sleeper", "namespace": "default", "uid": "11111111-1111-1111-1111-111111111111"},
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", "sleep 3600"]}]},
    },
    "web-with-everything": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "uid": "22222222-2222-2222-2222-222222222222",
                     "labels": {"app": "web"}},
        "spec": {
            "hostname": "web-0",
            "initContainers": [{"name": "fill", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi > /w/index.html"],
                                "volumeMounts": [{"name": "www", "mountPath": "/w"}]}],
            "containers": [
                {"name": "httpd", "image": "busybox:1.36", "command": ["httpd", "-f", "-p", "8080", "-h", "/w"],
                 "workingDir": "/w", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "env": [{"name": "MODE", "value": "prod"},
                         {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "key"}}}],
                 "envFrom": [{"configMapRef": {"name": "cfg"}}],
                 "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}},
                 "securityContext": {"runAsUser": 1000},
                 "volumeMounts": [{"name": "www", "mountPath": "/w", "readOnly": True}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2}},
                {"name": "sidecar", "image": "busybox", "args": ["sleep", "3600"]},
            ],
            "volumes": [{"name": "www", "emptyDir": {}}],
        },
    },
    "host-network": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "agent", "namespace": "kube-system", "uid": "33333333-3333-3333-3333-333333333333"},
        "spec": {"hostNetwork": True, "restartPolicy": "OnFailure",
                 "containers": [{"name": "main", "image": "registry.k8s.io/busybox", "command": ["sleep", "1000"],
                                 "securityContext": {"privileged": True}}]},
    },
}
# Pod -> container name ("POD": the sandbox) -> the hash its containers carry.
EXPECTED = {
    "busybox-sleep": {"POD": "93d132f55fbc3995", "app": "b7d8f1af818df255"},
    "web-with-everything": {"POD": "2cc4ab48c7b9b1ce", "fill": "f65caf47d532742f", "httpd": "977230b7adeab9c7",
                            "sidecar": "c9814388078de532"},
    "host-network": {"POD": "e31ce8559ed58824", "main": "64129420bfb045ff"},
}


def hashes(raw: dict[str, Any]) -> dict[str, str]:
    pod = decode_pod(raw)
    containers = [*(pod.spec.init_containers or []), *pod.spec.containers]
    return {"POD": sandbox_hash(pod), **{c.name: container_hash(c) for c in containers}}


@pytest.mark.parametrize("name", sorted(PODS))
def test_known_pods_hash_as_every_earlier_version_labelled_them(name: str) -> None:
    assert hashes(PODS[name]) == EXPECTED[name]


def test_fields_outside_the_container_spec_hash_leave_it_alone() -> None:
    raw = PODS["web-with-everything"]
    changed = {**raw, "metadata": {**raw["metadata"], "labels": {"app": "web", "version": "2"},
                                   "resourceVersion": "99"},
               "spec": {**raw["spec"], "terminationGracePeriodSeconds": 5, "restartPolicy": "OnFailure"}}
    assert hashes(changed) == EXPECTED["web-with-everything"]
