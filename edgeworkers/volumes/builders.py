"""The files of configMap, secret, downwardAPI and projected volumes: pure functions from the pod, the objects it
references and the node's facts to a payload for the atomic writer (kubelet's ``MakePayload`` of each plugin).

The objects come through ``Sources`` (the MetaClient in the agent): a missing one that is not optional, or a missing
key in ``items``, is a ``ConfigSourceError`` naming it, never its data.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Protocol

from edgeworkers.k8s.pod import (
    DownwardAPIVolumeFile,
    KeyToPath,
    Pod,
    ProjectedVolumeSource,
    Volume,
)
from edgeworkers.metamanager.client import NotAvailable, NotFound
from edgeworkers.volumes.atomic import FileProjection, Payload
from edgeworkers.volumes.downward import FieldError, PodFacts, field_value, resource_value
from edgeworkers.volumes.errors import ConfigSourceError
from edgeworkers.volumes.paths import posix, relative_parts

DEFAULT_MODE = 0o644
CONFIGMAP, SECRET = "configmap", "secret"
PROJECTED_REFUSED = {
    "service_account_token": "serviceAccountToken",
    "cluster_trust_bundle": "clusterTrustBundle",
    "pod_certificate": "podCertificate",
}


class Sources(Protocol):
    """Where configmaps and secrets come from (``MetaClient``): raise ``metamanager.client.NotAvailable`` (or a
    ``LookupError``) when the object cannot be had; the message names it."""

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]: ...

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]: ...


class Missing(Exception):
    """Raised by a ``Sources`` that does not know an object (for tests and the agent without a cloud)."""


class NoSources:
    """Without a MetaClient (tests, tools): every configmap and secret is missing."""

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        raise Missing(f'configmap "{name}" is not available on this node')

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        raise Missing(f'secret "{name}" is not available on this node')


def fetch(sources: Sources, kind: str, namespace: str, name: str, optional: bool) -> dict[str, Any] | None:
    """The object, or None when it is missing and ``optional``; ConfigSourceError (naming it) when it is missing
    and required."""
    getter = sources.get_configmap if kind == CONFIGMAP else sources.get_secret
    try:
        return getter(namespace, name)
    except NotFound:
        if optional:
            return None
        raise ConfigSourceError(f'{kind} "{name}" not found') from None
    except (NotAvailable, Missing, LookupError) as exc:
        if optional:
            return None
        raise ConfigSourceError(str(exc) or f'{kind} "{name}" not found') from None


def configmap_values(configmap: dict[str, Any] | None) -> dict[str, bytes]:
    """Every key of a configmap: ``data`` as UTF-8, ``binaryData`` decoded."""
    if configmap is None:
        return {}
    values = {key: str(value).encode() for key, value in (configmap.get("data") or {}).items()}
    for key, value in (configmap.get("binaryData") or {}).items():
        values[key] = _b64(value, "configmap", configmap)
    return values


def secret_values(secret: dict[str, Any] | None) -> dict[str, bytes]:
    """Every key of a secret, decoded (``stringData`` over ``data``, as the API server merges them)."""
    if secret is None:
        return {}
    values = {key: _b64(value, "secret", secret) for key, value in (secret.get("data") or {}).items()}
    values.update({key: str(value).encode() for key, value in (secret.get("stringData") or {}).items()})
    return values


def _b64(value: Any, kind: str, obj: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        name = (obj.get("metadata") or {}).get("name")
        raise ConfigSourceError(f'{kind} "{name}" holds a value that is not base64') from None


def project_keys(values: dict[str, bytes], items: list[KeyToPath] | None, mode: int, kind: str, name: str,
                 optional: bool, where: str) -> Payload:
    """Files from an object's keys: all of them (path = key), or ``items`` (key -> path, own mode)."""
    payload: Payload = {}
    if not items:
        for key, data in values.items():
            payload[posix(relative_parts(key, f"{where}: key"))] = FileProjection(data, mode)
        return payload
    for item in items:
        if item.key not in values:
            if optional:
                continue
            label = "config" if kind == CONFIGMAP else "secret"
            raise ConfigSourceError(f'{kind} "{name}" references non-existent {label} key: {item.key}')
        path = posix(relative_parts(item.path, f"{where}: items path"))
        payload[path] = FileProjection(values[item.key], item.mode if item.mode is not None else mode)
    return payload


def downward_files(pod: Pod, items: list[DownwardAPIVolumeFile] | None, mode: int, facts: PodFacts,
                   where: str) -> Payload:
    payload: Payload = {}
    for item in items or []:
        path = posix(relative_parts(item.path, f"{where}: items path"))
        try:
            if item.field_ref is not None:
                value = field_value(pod, item.field_ref.field_path, facts)
            elif item.resource_field_ref is not None:
                ref = item.resource_field_ref
                value = resource_value(pod, ref.container_name or "", ref.resource, ref.divisor, facts)
            else:
                raise FieldError("one of fieldRef and resourceFieldRef is required")
        except FieldError as exc:
            raise ConfigSourceError(f"{where}: {exc}") from None
        payload[path] = FileProjection(value.encode(), item.mode if item.mode is not None else mode)
    return payload


def _merge(into: Payload, more: Payload, where: str) -> None:
    for path, item in more.items():
        if path in into:
            raise ConfigSourceError(f"{where}: more than one source projects {path!r}")
        into[path] = item


def projected_files(pod: Pod, source: ProjectedVolumeSource, sources: Sources, facts: PodFacts,
                    where: str) -> Payload:
    namespace = pod.metadata.namespace or "default"
    mode = source.default_mode if source.default_mode is not None else DEFAULT_MODE
    payload: Payload = {}
    for projection in source.sources or []:
        for attr, label in PROJECTED_REFUSED.items():
            if getattr(projection, attr) is not None:
                raise ConfigSourceError(f"{where}: {label} projections are not supported on this node")
        if projection.config_map is not None:
            ref = projection.config_map
            obj = fetch(sources, CONFIGMAP, namespace, ref.name or "", bool(ref.optional))
            _merge(payload, project_keys(configmap_values(obj), ref.items, mode, CONFIGMAP, ref.name or "",
                                         bool(ref.optional), where), where)
        if projection.secret is not None:
            ref = projection.secret
            obj = fetch(sources, SECRET, namespace, ref.name or "", bool(ref.optional))
            _merge(payload, project_keys(secret_values(obj), ref.items, mode, SECRET, ref.name or "",
                                         bool(ref.optional), where), where)
        if projection.downward_api is not None:
            _merge(payload, downward_files(pod, projection.downward_api.items, mode, facts, where), where)
    return payload


def volume_payload(pod: Pod, volume: Volume, sources: Sources, facts: PodFacts) -> Payload:
    """The files of a configMap, secret, downwardAPI or projected volume."""
    namespace = pod.metadata.namespace or "default"
    where = f'volume "{volume.name}"'
    if volume.config_map is not None:
        src = volume.config_map
        mode = src.default_mode if src.default_mode is not None else DEFAULT_MODE
        obj = fetch(sources, CONFIGMAP, namespace, src.name or "", bool(src.optional))
        return project_keys(configmap_values(obj), src.items, mode, CONFIGMAP, src.name or "", bool(src.optional),
                            where)
    if volume.secret is not None:
        src = volume.secret
        mode = src.default_mode if src.default_mode is not None else DEFAULT_MODE
        obj = fetch(sources, SECRET, namespace, src.secret_name or "", bool(src.optional))
        return project_keys(secret_values(obj), src.items, mode, SECRET, src.secret_name or "", bool(src.optional),
                            where)
    if volume.downward_api is not None:
        src = volume.downward_api
        mode = src.default_mode if src.default_mode is not None else DEFAULT_MODE
        return downward_files(pod, src.items, mode, facts, where)
    if volume.projected is not None:
        return projected_files(pod, volume.projected, sources, facts, where)
    raise ConfigSourceError(f"{where}: not a projected volume")


def holds_secrets(volume: Volume) -> bool:
    """Volumes kept on a tmpfs, never on the node's disk: secret and projected ones (as kubelet's)."""
    return volume.secret is not None or volume.projected is not None
