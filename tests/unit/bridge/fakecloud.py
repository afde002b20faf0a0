"""An in-memory cloud API for the bridge's tests (objects by path, every call recorded, canned failures), and pods.

It answers as the API server does where the bridge depends on it: 404 for a missing object, 409 AlreadyExists on
create, 409 Conflict for a uid precondition (DELETE), 422 for a status patch naming another uid (metadata.uid is
immutable), a pod bound to a node waiting with a ``deletionTimestamp`` unless deleted with grace 0, merge-patch of
status.
"""
from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass
from typing import Any

from edgeworkers.cloud.patch import merge_patch  # the cloud's own RFC 7386, as the real server applies it
from edgeworkers.constants import ANNOTATION_SOURCE, SOURCE_FILE
from edgeworkers.kubeclient import ApiError, CloudUnavailable

PODS = "/api/v1/namespaces/{namespace}/pods"
NODE = "edge-1"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None
    content_type: str | None = None


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.down = False
        self._failures: dict[tuple[str, str], list[Exception]] = {}
        self._uids = itertools.count(1)
        self._versions = itertools.count(100)

    # --- test set-up ---------------------------------------------------------------------------

    def add(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` at ``path`` (a uid and a resourceVersion given unless set); return the stored copy."""
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("uid", f"uid-{next(self._uids)}")
        obj["metadata"].setdefault("resourceVersion", str(next(self._versions)))
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def fail(self, method: str, path: str, *errors: Exception) -> None:
        """Answer the next calls of ``method`` on ``path`` with ``errors``, one each."""
        self._failures.setdefault((method, path), []).extend(errors)

    def requests(self, method: str | None = None) -> list[Call]:
        return [call for call in self.calls if method is None or call.method == method]

    # --- the API -------------------------------------------------------------------------------

    def _enter(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> None:
        self.calls.append(Call(method, path, copy.deepcopy(body), content_type))
        if self.down:
            raise CloudUnavailable(f"{method} {path}: connection refused")
        queued = self._failures.get((method, path))
        if queued:
            raise queued.pop(0)

    def _existing(self, path: str) -> dict[str, Any]:
        if path not in self.objects:
            raise ApiError(404, "NotFound", f'"{path.rsplit("/", 1)[-1]}" not found')
        return self.objects[path]

    def get(self, path: str) -> dict[str, Any]:
        self._enter("GET", path)
        return copy.deepcopy(self._existing(path))

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        target = f"{path}/{body['metadata']['name']}"
        self._enter("POST", target, body)  # recorded (and failed) by the path of the object it creates
        if target in self.objects:
            raise ApiError(409, "AlreadyExists", f'pods "{body["metadata"]["name"]}" already exists')
        obj = copy.deepcopy(body)
        obj["metadata"].pop("uid", None)
        obj["status"] = {"phase": "Pending"}
        return self.add(target, obj)

    def patch(self, path: str, body: dict[str, Any], content_type: str = "") -> dict[str, Any]:
        self._enter("PATCH", path, body, content_type)
        obj = self._existing(path.removesuffix("/status"))
        uid = (body.get("metadata") or {}).get("uid")
        if uid and uid != obj["metadata"]["uid"]:
            name = obj["metadata"]["name"]  # as kube-apiserver answers: a patch carries no preconditions
            raise ApiError(422, "Invalid", f'Pod "{name}" is invalid: metadata.uid: Invalid value: "{uid}": '
                                           "field is immutable")
        obj["status"] = merge_patch(obj.get("status") or {}, body["status"])
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self._enter("DELETE", path, body)
        obj = self._existing(path)
        options = body or {}
        wanted = (options.get("preconditions") or {}).get("uid")
        if wanted and wanted != obj["metadata"]["uid"]:
            raise ApiError(409, "Conflict", "Precondition failed: UID in precondition")
        if options.get("gracePeriodSeconds") != 0 and (obj.get("spec") or {}).get("nodeName"):
            obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            return copy.deepcopy(obj)
        return self.objects.pop(path)


class FakeStop(threading.Event):
    """A stop event whose waits return at once: records each delay, runs ``on_wait`` and stops after ``waits``."""

    def __init__(self, waits: int, on_wait: Any = None) -> None:
        super().__init__()
        self.delays: list[float] = []
        self._waits = waits
        self._on_wait = on_wait

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(timeout or 0.0)
        if self._on_wait is not None:
            self._on_wait(len(self.delays))
        if len(self.delays) >= self._waits:
            self.set()
        return self.is_set()


def pod_path(namespace: str, name: str) -> str:
    return f"{PODS.format(namespace=namespace)}/{name}"


def static_pod(name: str = f"web-{NODE}", rv: str = "1", uid: str = "static-uid", **spec: Any) -> dict[str, Any]:
    """A static pod as MetaManager stores it after ``edgeworkers pod apply`` (name suffixed with the node's)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv,
                     "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web"},
                     "annotations": {ANNOTATION_SOURCE: SOURCE_FILE, "team": "edge"}},
        "spec": {"containers": [{"name": "web", "image": "busybox", "command": ["sleep", "3600"]}],
                 "restartPolicy": "Always", **spec},
        "status": {"phase": "Running"},
    }
