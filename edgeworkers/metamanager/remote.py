"""MetaClient's remote query: a configmap or secret fetched from the cloud by a GET, as kubelet reads them.

Built lazily, on the first miss: a worker that never misses never loads the HTTP client, and credentials that the
cloud makes after the worker started are found then.
"""
from __future__ import annotations

import threading
from typing import Any

from edgeworkers.config import Settings
from edgeworkers.metamanager.store import CONFIGMAP, SECRET

# A miss holds up one pod's sync at most this long when the cloud is slow; the pod waits and retries.
QUERY_TIMEOUT_S = 5.0
# The configuration kinds the node reads from the cloud, by their API resource (plural) name.
PLURAL = {CONFIGMAP: "configmaps", SECRET: "secrets"}


def object_path(kind: str, namespace: str, name: str) -> str:
    """The API path of a configmap or secret."""
    return f"/api/v1/namespaces/{namespace}/{PLURAL[kind]}/{name}"


class CloudRemote:
    """``Remote`` for ``MetaClient``: (kind, namespace, name) -> the object, None on 404; raises when unreachable."""

    def __init__(self, settings: Settings, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._api: Any = None
        self._lock = threading.Lock()

    def __call__(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        from edgeworkers.kubeclient import ApiError

        try:
            return self._client().get(object_path(kind, namespace, name))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def _client(self) -> Any:
        from edgeworkers.kubeclient import ApiClient, CloudUnavailable, access_from_settings

        with self._lock:
            if self._api is None:
                access = access_from_settings(self._settings)
                if access is None:
                    raise CloudUnavailable("the cloud's credentials are not there yet")
                self._api = ApiClient(access, timeout_s=self._timeout_s)
            return self._api
