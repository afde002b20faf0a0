"""The KubeEdge-style message envelope that carries one change from the cloud bridge (or the CLI) to a worker.

``{"header": {msg_id, parent_msg_id, timestamp, resourceversion, sync}, "route": {source, group, resource,
operation}, "content": <object>}`` with ``resource`` as ``<namespace>/<kind>/<name>``. Workers reconcile to the
desired state in MetaManager, not to ``content``: the message says *what* changed, the store says *how it is now*.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

Operation = Literal["insert", "update", "delete", "query", "response"]

GROUP_RESOURCE = "resource"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _new_id() -> str:
    return str(uuid.uuid4())


class Header(BaseModel):
    msg_id: str = Field(default_factory=_new_id)
    parent_msg_id: str = ""
    timestamp: int = Field(default_factory=_now_ms)  # milliseconds since the epoch
    resourceversion: str = ""
    sync: bool = False


class Route(BaseModel):
    source: str
    group: str = GROUP_RESOURCE
    resource: str  # "<namespace>/<kind>/<name>"
    operation: Operation


def resource(namespace: str, kind: str, name: str) -> str:
    return f"{namespace}/{kind}/{name}"


def parse_resource(text: str) -> tuple[str, str, str]:
    """``"default/pod/nginx"`` -> ``("default", "pod", "nginx")``."""
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"invalid resource {text!r}: want <namespace>/<kind>/<name>")
    return parts[0], parts[1], parts[2]


class Message(BaseModel):
    header: Header = Field(default_factory=Header)
    route: Route
    content: Any = None

    @classmethod
    def for_object(
        cls,
        kind: str,
        obj: dict[str, Any],
        operation: Operation,
        source: str,
        parent_msg_id: str = "",
    ) -> Message:
        """A message about ``obj`` (a Kubernetes object dict) carrying its resourceVersion."""
        meta = obj.get("metadata") or {}
        return cls(
            header=Header(parent_msg_id=parent_msg_id, resourceversion=str(meta.get("resourceVersion") or "")),
            route=Route(
                source=source,
                resource=resource(meta.get("namespace") or "default", kind, meta["name"]),
                operation=operation,
            ),
            content=obj,
        )

    @property
    def key(self) -> str:
        """The object's ``"<namespace>/<name>"``."""
        namespace, _, name = parse_resource(self.route.resource)
        return f"{namespace}/{name}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls.model_validate(data)


# How a message reaches the workers: enqueue its task (``tasks.sender``), or a list's append in tests.
Send = Callable[[Message], None]
