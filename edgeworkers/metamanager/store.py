"""MetaManager's store: the node's desired state (pods, configmaps, secrets) and pod status, in Redis.

Objects are JSON under ``f"{KEY_META}:{namespace}/{kind}/{name}"`` (kind lowercase singular, as KubeEdge's
resource keys), with one index set per kind holding ``"<namespace>/<name>"``. Redis runs with persistence,
so an agent restarted while the cloud is away still knows what it must run.

A write never goes backwards: an object older (by numeric ``metadata.resourceVersion``) than the stored one
is ignored, so a late, reordered or replayed event cannot undo a newer one. The check and the write are one
optimistic transaction (WATCH/MULTI).
"""
from __future__ import annotations

import json
from typing import Any

import redis

from edgeworkers import constants

POD = "pod"
CONFIGMAP = "configmap"
SECRET = "secret"


def object_key(kind: str, namespace: str, name: str) -> str:
    return f"{constants.KEY_META}:{namespace}/{kind}/{name}"


def index_key(kind: str) -> str:
    return f"{constants.KEY_META_INDEX}:{kind}"


def status_key(key: str) -> str:
    return f"{constants.KEY_POD_STATUS}:{key}"


def _resource_version(obj: dict[str, Any] | None) -> int | None:
    """The object's resourceVersion as a number, or None when absent or opaque (then never compared)."""
    value = ((obj or {}).get("metadata") or {}).get("resourceVersion")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_older(new: dict[str, Any], stored: dict[str, Any] | None) -> bool:
    """True when ``new`` must not replace ``stored``: both resourceVersions numeric and new's smaller."""
    new_rv, stored_rv = _resource_version(new), _resource_version(stored)
    return new_rv is not None and stored_rv is not None and new_rv < stored_rv


class MetaStore:
    """Desired state and pod status of one node. Generic over kind; every method is safe to call concurrently."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def put(self, kind: str, obj: dict[str, Any]) -> bool:
        """Store ``obj``; False (and nothing written) when it is older than the stored one."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace") or "default", meta["name"]
        key = object_key(kind, namespace, name)
        written = False

        def write(pipe: redis.client.Pipeline) -> None:
            nonlocal written
            raw = pipe.get(key)
            if raw is not None and is_older(obj, json.loads(raw)):
                written = False
                return
            pipe.multi()
            pipe.set(key, json.dumps(obj, separators=(",", ":")))
            pipe.sadd(index_key(kind), f"{namespace}/{name}")
            written = True

        self._redis.transaction(write, key)
        return written

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        raw = self._redis.get(object_key(kind, namespace, name))
        return None if raw is None else json.loads(raw)

    def delete(self, kind: str, namespace: str, name: str, resource_version: str | None = None) -> bool:
        """Remove the object; with ``resource_version``, only if the stored one still has it (a newer write
        made meanwhile is kept). True when nothing of that version is left stored."""
        key = object_key(kind, namespace, name)
        deleted = True

        def remove(pipe: redis.client.Pipeline) -> None:
            nonlocal deleted
            if resource_version is not None:
                raw = pipe.get(key)
                stored = None if raw is None else json.loads(raw)
                if stored is not None and stored["metadata"].get("resourceVersion") != resource_version:
                    deleted = False
                    return
            pipe.multi()
            pipe.delete(key)
            pipe.srem(index_key(kind), f"{namespace}/{name}")

        self._redis.transaction(remove, key)
        return deleted

    def keys(self, kind: str) -> set[str]:
        """Every stored object of ``kind`` as ``"<namespace>/<name>"``."""
        return {member.decode() for member in self._redis.smembers(index_key(kind))}

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of ``kind`` (in ``namespace`` when given), sorted by namespace and name."""
        members = sorted(k for k in self.keys(kind) if namespace is None or k.split("/", 1)[0] == namespace)
        if not members:
            return []
        raws = self._redis.mget([object_key(kind, *member.split("/", 1)) for member in members])
        return [json.loads(raw) for raw in raws if raw is not None]

    def put_pod_status(self, key: str, status: dict[str, Any]) -> None:
        self._redis.set(status_key(key), json.dumps(status, separators=(",", ":")))

    def get_pod_status(self, key: str) -> dict[str, Any] | None:
        raw = self._redis.get(status_key(key))
        return None if raw is None else json.loads(raw)

    def delete_pod_status(self, key: str) -> None:
        self._redis.delete(status_key(key))
