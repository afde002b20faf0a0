"""The configmaps and secrets a pod references: every place a pod can name one, from a table."""
from __future__ import annotations

from typing import Any

import pytest

from edgeworkers.k8s.references import CONFIGMAP, SECRET, references
from edgeworkers.metamanager import store


def pod(spec: dict[str, Any], namespace: str | None = "apps") -> dict[str, Any]:
    metadata = {"name": "web"} if namespace is None else {"name": "web", "namespace": namespace}
    return {"metadata": metadata, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": "busybox", **fields}


CASES = [
    ("nothing", {}, set()),
    ("configMap volume", {"volumes": [{"name": "v", "configMap": {"name": "cfg"}}]}, {(CONFIGMAP, "cfg")}),
    ("secret volume", {"volumes": [{"name": "v", "secret": {"secretName": "tls"}}]}, {(SECRET, "tls")}),
    ("emptyDir volume", {"volumes": [{"name": "v", "emptyDir": {}}]}, set()),
    (
        "projected volume",
        {"volumes": [{"name": "v", "projected": {"sources": [
            {"configMap": {"name": "cfg-a"}},
            {"secret": {"name": "sec-a"}},
            {"downwardAPI": {"items": []}},
            {"serviceAccountToken": {"path": "token"}},
        ]}}]},
        {(CONFIGMAP, "cfg-a"), (SECRET, "sec-a")},
    ),
    (
        "env valueFrom",
        {"containers": [container(env=[
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "b", "optional": True}}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "D", "value": "plain"},
        ])]},
        {(CONFIGMAP, "cfg"), (SECRET, "pw")},
    ),
    (
        "envFrom",
        {"containers": [container(envFrom=[{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "pw"}},
                                           {"prefix": "X_", "configMapRef": {"name": "cfg-x"}}])]},
        {(CONFIGMAP, "cfg"), (SECRET, "pw"), (CONFIGMAP, "cfg-x")},
    ),
    (
        "init and ephemeral containers",
        {"initContainers": [container(envFrom=[{"secretRef": {"name": "init-pw"}}])],
         "ephemeralContainers": [container(env=[
             {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "debug", "key": "a"}}}])]},
        {(SECRET, "init-pw"), (CONFIGMAP, "debug")},
    ),
    ("imagePullSecrets", {"imagePullSecrets": [{"name": "regcred"}, {}]}, {(SECRET, "regcred")}),
    (
        "the same object from several places, once",
        {"volumes": [{"name": "v", "configMap": {"name": "cfg"}}],
         "containers": [container(envFrom=[{"configMapRef": {"name": "cfg"}}]),
                        container(env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}}])]},
        {(CONFIGMAP, "cfg")},
    ),
    (
        "a configmap and a secret of one name are two objects",
        {"volumes": [{"name": "a", "configMap": {"name": "same"}}, {"name": "b", "secret": {"secretName": "same"}}]},
        {(CONFIGMAP, "same"), (SECRET, "same")},
    ),
    (
        "references without a name name nothing",
        {"volumes": [{"name": "v", "secret": {}}, {"name": "w", "configMap": {}}],
         "containers": [container(envFrom=[{"configMapRef": {}}])]},
        set(),
    ),
]


@pytest.mark.parametrize(("spec", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_references(spec: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert references(pod(spec)) == {(kind, "apps", name) for kind, name in expected}


def test_a_pod_without_namespace_references_objects_of_the_default_namespace() -> None:
    assert references(pod({"imagePullSecrets": [{"name": "regcred"}]}, namespace=None)) == {
        (SECRET, "default", "regcred")
    }


def test_kinds_are_metamanagers() -> None:
    assert (CONFIGMAP, SECRET) == (store.CONFIGMAP, store.SECRET)
