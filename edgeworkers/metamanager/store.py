"""MetaManager's store: the node's desired state (pods, configmaps, secrets) and pod status, in Redis.

Objects are JSON under ``f"{KEY_META}:{namespace}/{kind}/{name}"`` (kind lowercase singular, as KubeEdge's
resource keys), with one index set per kind holding ``"<namespace>/<name>"``. Redis runs with persistence,
so an agent restarted while the cloud is away still knows what it must run.

Writes are ordered and idempotent:
- a write never goes backwards: an object older (by numeric ``metadata.resourceVersion``) than the stored one is
  refused (``Put.STALE``), and the same version again changes nothing (``Put.UNCHANGED``);
- a delete leaves a tombstone holding the deleted version (for ``TOMBSTONE_TTL_S``), so a late or replayed insert
  of that object cannot bring it back; a re-created object carries a newer version and passes;
- ``put(..., expect=...)`` is a compare-and-set on the stored version (``Conflict`` when another writer came first).
Each check and its write are one optimistic transaction (WATCH/MULTI).

Secrets are encrypted at rest with the node's key (``metamanager.crypto``); nothing else is. A secret that does not
decrypt (the node's key replaced while Redis kept its data) is treated as absent: ``get`` removes it (no tombstone), so
MetaClient fetches it again from the cloud, a write replaces it, and its pods show the miss meanwhile.
"""
from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import redis

from edgeworkers import constants
from edgeworkers.metamanager.crypto import SecretUnreadable

if TYPE_CHECKING:
    from edgeworkers.metamanager.crypto import Cipher

log = logging.getLogger(__name__)

POD = "pod"
CONFIGMAP = "configmap"
SECRET = "secret"
KINDS = (POD, CONFIGMAP, SECRET)

# How long a delete's tombstone is kept: longer than any outage the bridge relists after.
TOMBSTONE_TTL_S = 7 * 24 * 3600
ANY = object()  # ``expect`` default: no compare-and-set
# The store's client and its failures, as the layers above name them (redis-py appears only in the stores' layers).
Redis = redis.Redis
StoreError = redis.RedisError


class Put(enum.Enum):
    """What a ``put`` did."""

    STORED = "stored"  # written: new, or newer than the stored object
    UNCHANGED = "unchanged"  # the stored object already has this version (and content)
    STALE = "stale"  # refused: older than the stored object or its tombstone

    def __bool__(self) -> bool:
        return self is not Put.STALE


class Conflict(Exception):
    """A compare-and-set write found another version stored than the one it expected."""

    def __init__(self, key: str, expected: str | None, found: str | None) -> None:
        super().__init__(f"{key}: expected version {expected or '(none)'}, found {found or '(none)'}")
        self.expected, self.found = expected, found


def object_key(kind: str, namespace: str, name: str) -> str:
    return f"{constants.KEY_META}:{namespace}/{kind}/{name}"


def tombstone_key(kind: str, namespace: str, name: str) -> str:
    return f"{constants.KEY_META_TOMBSTONE}:{namespace}/{kind}/{name}"


def index_key(kind: str) -> str:
    return f"{constants.KEY_META_INDEX}:{kind}"


def version_number(obj: dict[str, Any] | None) -> int | None:
    """The object's resourceVersion as a number, or None when absent or opaque (then never compared)."""
    value = ((obj or {}).get("metadata") or {}).get("resourceVersion")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_older(new: dict[str, Any], stored: dict[str, Any] | None) -> bool:
    """True when ``new`` must not replace ``stored``: both resourceVersions numeric and new's smaller."""
    new_rv, stored_rv = version_number(new), version_number(stored)
    return new_rv is not None and stored_rv is not None and new_rv < stored_rv


def _version_text(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion") if obj else None


class MetaStore:
    """Desired state and pod status of one node. Generic over kind; every method is safe to call concurrently.

    ``cipher`` encrypts secrets; a store without one refuses to read or write them.
    """

    def __init__(self, client: redis.Redis, cipher: Cipher | None = None) -> None:
        self._redis = client
        self._cipher = cipher

    @property
    def redis(self) -> redis.Redis:
        return self._redis

    # --- encoding ------------------------------------------------------------------------------

    def _encode(self, kind: str, obj: dict[str, Any]) -> bytes:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return self._need_cipher(kind).encrypt(raw) if kind == SECRET else raw

    def _decode(self, kind: str, raw: bytes | None) -> dict[str, Any] | None:
        """The stored object; None when absent or undecryptable (a secret under another key: see ``_unreadable``)."""
        if raw is None:
            return None
        try:
            return json.loads(self._plain(kind, raw))
        except SecretUnreadable:
            return None

    def _plain(self, kind: str, raw: bytes) -> bytes:
        return self._need_cipher(kind).decrypt(raw) if kind == SECRET else raw

    def _need_cipher(self, kind: str) -> Cipher:
        if self._cipher is None:
            raise RuntimeError(f"{kind}s are encrypted at rest: this store was opened without the node's key")
        return self._cipher

    # --- objects -------------------------------------------------------------------------------

    def put(self, kind: str, obj: dict[str, Any], *, expect: Any = ANY) -> Put:
        """Store ``obj`` unless it is older than the stored object or its tombstone.

        ``expect``: the resourceVersion the caller read (None: no object stored); ``Conflict`` when another is.
        """
        meta = obj["metadata"]
        namespace, name = meta.get("namespace") or "default", meta["name"]
        key, tomb = object_key(kind, namespace, name), tombstone_key(kind, namespace, name)
        encoded = self._encode(kind, obj)
        outcome = Put.STALE

        def write(pipe: redis.client.Pipeline) -> None:
            nonlocal outcome
            raw, tombstone = pipe.get(key), pipe.get(tomb)
            stored = self._decode(kind, raw)
            if expect is not ANY and _version_text(stored) != expect:
                raise Conflict(f"{namespace}/{kind}/{name}", expect, _version_text(stored))
            new_rv = version_number(obj)
            if is_older(obj, stored) or (tombstone is not None and new_rv is not None and new_rv <= int(tombstone)):
                outcome = Put.STALE
                return
            if stored is not None and (
                (new_rv is not None and new_rv == version_number(stored) and expect is ANY) or stored == obj
            ):
                outcome = Put.UNCHANGED
                return
            pipe.multi()
            pipe.set(key, encoded)
            pipe.sadd(index_key(kind), f"{namespace}/{name}")
            outcome = Put.STORED

        self._redis.transaction(write, key, tomb)
        return outcome

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        key = object_key(kind, namespace, name)
        raw = self._redis.get(key)
        obj = self._decode(kind, raw)
        if obj is None and raw is not None:
            self._unreadable(kind, namespace, name, raw)
        return obj

    def _unreadable(self, kind: str, namespace: str, name: str, raw: bytes) -> None:
        """Remove a value that does not decrypt, with its index entry, unless rewritten meanwhile (no tombstone: the cloud's
        copy, whatever its version, is stored again). Logged by name, never by value."""
        key = object_key(kind, namespace, name)

        def remove(pipe: redis.client.Pipeline) -> None:
            if pipe.get(key) != raw:
                return
            pipe.multi()
            pipe.delete(key)
            pipe.srem(index_key(kind), f"{namespace}/{name}")

        self._redis.transaction(remove, key)
        log.warning("%s %s/%s cannot be decrypted with this node's key (was the key replaced?): treated as absent, "
                    "fetched again from the cloud", kind, namespace, name)  # fmt: skip

    def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
        *,
        deleted_version: str | None = None,
        tombstone: bool = True,
    ) -> bool:
        """Remove the object and leave its tombstone; with ``resource_version``, only if the stored one still has
        it (a newer write made meanwhile is kept). ``deleted_version``: the version of the deletion itself (a
        watch's DELETED event), kept in the tombstone when newer. ``tombstone=False``: the node merely stops keeping
        an object that still exists (a configmap no pod uses any more), so it may be stored again as it is.
        True when nothing of that version is left."""
        key, tomb = object_key(kind, namespace, name), tombstone_key(kind, namespace, name)
        deleted = True

        def remove(pipe: redis.client.Pipeline) -> None:
            nonlocal deleted
            stored = self._decode(kind, pipe.get(key))
            if resource_version is not None and stored is not None and _version_text(stored) != resource_version:
                deleted = False
                return
            versions = [v for v in (version_number(stored), _int(deleted_version), _int(pipe.get(tomb))) if v]
            pipe.multi()
            pipe.delete(key)
            pipe.srem(index_key(kind), f"{namespace}/{name}")
            if versions and tombstone:
                pipe.set(tomb, max(versions), ex=TOMBSTONE_TTL_S)

        self._redis.transaction(remove, key, tomb)
        return deleted

    def tombstone(self, kind: str, namespace: str, name: str) -> int | None:
        """The version a deleted object had (None: no tombstone)."""
        return _int(self._redis.get(tombstone_key(kind, namespace, name)))

    def keys(self, kind: str) -> set[str]:
        """Every stored object of ``kind`` as ``"<namespace>/<name>"``."""
        return {member.decode() for member in self._redis.smembers(index_key(kind))}

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of ``kind`` (in ``namespace`` when given), sorted by namespace and name."""
        return [*self.each(kind, namespace)]

    def each(self, kind: str, namespace: str | None = None, containing: bytes = b"") -> Iterator[dict[str, Any]]:
        """As ``list``, each object decoded only when the iteration reaches it, so the periodic jobs that go through
        the node's pods never hold them all decoded at once; with ``containing``, only the objects whose JSON
        contains it (the others are never decoded)."""
        members = sorted(k for k in self.keys(kind) if namespace is None or k.split("/", 1)[0] == namespace)
        if not members:
            return
        raws = self._redis.mget([object_key(kind, *member.split("/", 1)) for member in members])
        for index, raw in enumerate(raws):
            raws[index] = None  # each raw object is let go once decoded
            if raw is None:
                continue
            try:
                plain = self._plain(kind, raw)
            except SecretUnreadable:
                self._unreadable(kind, *members[index].split("/", 1), raw)
                continue
            if containing in plain:
                yield json.loads(plain)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
