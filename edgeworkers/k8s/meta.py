"""The base of every Kubernetes model here, and ``ObjectMeta``.

Models read and write Kubernetes' camelCase JSON. Fields the agent does not act on are kept
(``extra="allow"``), so an object read, changed and written back loses nothing; the declared
fields double as the core/v1 schema that strict field validation checks against.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class K8sModel(BaseModel):
    """A Kubernetes object or sub-object: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Self:
        return cls.model_validate(obj)

    def to_dict(self) -> dict[str, Any]:
        """Exact Kubernetes JSON: camelCase, unset fields omitted, kept extra fields included."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OwnerReference(K8sModel):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    uid: str | None = None
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(K8sModel):
    api_version: str | None = None
    fields_type: str | None = None
    fields_v1: Any = Field(default=None, alias="fieldsV1")
    manager: str | None = None
    operation: str | None = None
    subresource: str | None = None
    time: str | None = None


class ObjectMeta(K8sModel):
    """``metadata``; timestamps stay RFC 3339 strings so they round-trip byte for byte."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[ManagedFieldsEntry] | None = None
    self_link: str | None = None


class ObjectReference(K8sModel):
    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class K8sObject(K8sModel):
    """A top-level object: ``apiVersion``, ``kind``, ``metadata``."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @property
    def key(self) -> str:
        """``namespace/name`` (just ``name`` for cluster-scoped objects)."""
        ns, name = self.metadata.namespace, self.metadata.name or ""
        return f"{ns}/{name}" if ns else name
