"""MetaClient: how the rest of the agent reads configmaps, secrets and pods, and sends statuses.

Reads answer from MetaManager's store; on a miss a configmap or secret is fetched from the cloud (``remote``, with a
timeout), stored and returned, as KubeEdge's MetaClient does with a remote query. With the cloud unreachable the
stored copy is served; a miss then is one clear error (``NotAvailable``) that a pod's status can show. Statuses go
into the outbox, which the bridge drains to the cloud.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from edgeworkers.constants import ANNOTATION_SOURCE, SOURCE_FILE
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import CONFIGMAP, POD, SECRET, MetaStore

log = logging.getLogger(__name__)

# (kind, namespace, name) -> the object, or None when the cloud says it does not exist; raises when unreachable.
Remote = Callable[[str, str, str], dict[str, Any] | None]


class NotAvailable(Exception):
    """An object the agent needs is neither stored nor obtainable now; the message names it (never its data)."""

    def __init__(self, kind: str, namespace: str, name: str, why: str) -> None:
        super().__init__(f'{kind} "{name}" {why}')
        self.kind, self.namespace, self.name = kind, namespace, name


class NotFound(NotAvailable):
    """The cloud says the object does not exist."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(kind, namespace, name, "not found")


class MetaClient:
    def __init__(self, store: MetaStore, outbox: Outbox, remote: Remote | None = None) -> None:
        self.store = store
        self.outbox = outbox
        self._remote = remote

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        return self._get(CONFIGMAP, namespace, name)

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self._get(SECRET, namespace, name)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The desired pod (pods are only ever pushed by the bridge or the CLI: no remote query)."""
        return self.store.get(POD, namespace, name)

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        stored = self.store.get(kind, namespace, name)
        if stored is not None:
            return stored
        if self._remote is None:
            raise NotAvailable(kind, namespace, name, "is not on this node and the cloud is not configured")
        try:
            fetched = self._remote(kind, namespace, name)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the cloud is the same miss to the caller
            log.info("%s %s/%s: the cloud cannot be asked: %s", kind, namespace, name, type(exc).__name__)
            raise NotAvailable(kind, namespace, name, "is not on this node and the cloud is unreachable") from None
        if fetched is None:
            raise NotFound(kind, namespace, name)
        self.store.put(kind, fetched)
        return fetched

    def send_pod_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        """Queue the pod's status for the cloud (a static pod's through its mirror pod)."""
        meta = pod["metadata"]
        self.outbox.pod_status(meta.get("namespace") or "default", meta["name"], meta.get("uid") or "", status,
                               mirror=is_static(pod))

    def confirm_deleted(self, pod: dict[str, Any]) -> None:
        """Queue the confirmation that the pod's containers are gone."""
        meta = pod["metadata"]
        self.outbox.pod_deleted(meta.get("namespace") or "default", meta["name"], meta.get("uid") or "",
                                mirror=is_static(pod))


def is_static(pod: dict[str, Any]) -> bool:
    """A node-local pod (``edgeworkers pod apply``), as kubelet tells a file pod from an API pod."""
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SOURCE) == SOURCE_FILE
