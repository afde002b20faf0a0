"""The configmaps and secrets a pod references, as kubelet's ``podutil.VisitPodConfigmapNames/SecretNames`` find them.

The node keeps exactly the objects its pods reference (and fetches nothing else), so this is what decides which
configmaps and secrets the bridge refreshes and which it drops. Pure: works on the pod as a dict, stored or applied.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

CONFIGMAP = "configmap"
SECRET = "secret"

Reference = tuple[str, str, str]  # (kind, namespace, name), kind as MetaManager names it

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def references(pod: dict[str, Any]) -> set[Reference]:
    """Every configmap and secret ``pod`` names: volumes (configMap, secret, projected), env ``valueFrom``,
    ``envFrom`` and ``imagePullSecrets``; optional ones too (the node still wants them when they exist)."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    return {(kind, namespace, name) for kind, name in _named(pod.get("spec") or {}) if name}


def _named(spec: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    for secret in spec.get("imagePullSecrets") or []:
        yield SECRET, secret.get("name")
    for volume in spec.get("volumes") or []:
        yield from _volume(volume)
    for list_name in _CONTAINER_LISTS:
        for container in spec.get(list_name) or []:
            yield from _container(container)


def _volume(volume: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    if volume.get("configMap"):
        yield CONFIGMAP, volume["configMap"].get("name")
    if volume.get("secret"):
        yield SECRET, volume["secret"].get("secretName")
    for source in (volume.get("projected") or {}).get("sources") or []:
        if source.get("configMap"):
            yield CONFIGMAP, source["configMap"].get("name")
        if source.get("secret"):
            yield SECRET, source["secret"].get("name")


def _container(container: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    for source in container.get("envFrom") or []:
        if source.get("configMapRef"):
            yield CONFIGMAP, source["configMapRef"].get("name")
        if source.get("secretRef"):
            yield SECRET, source["secretRef"].get("name")
    for env in container.get("env") or []:
        value_from = env.get("valueFrom") or {}
        if value_from.get("configMapKeyRef"):
            yield CONFIGMAP, value_from["configMapKeyRef"].get("name")
        if value_from.get("secretKeyRef"):
            yield SECRET, value_from["secretKeyRef"].get("name")
