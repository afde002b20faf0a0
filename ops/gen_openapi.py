#!/usr/bin/env python3
"""Write ``edgeworkers/cloud/openapi_definitions.json.gz``: the OpenAPI v2 definitions of every kind the cloud serves
(with every type they reference), for ``/openapi/v2``, ``/openapi/v3`` and so ``kubectl explain``.

They come from the official Python client's models (a test dependency: ``kubernetes``, generated from Kubernetes' own
OpenAPI), read at development time so the cloud loads a small file instead of the client's 800 modules. Run it again
after adding a served kind; ``tests/unit/cloud/test_openapi.py`` fails while the file is stale.

    .venv/bin/python ops/gen_openapi.py
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeworkers.cloud.discovery import SERVED  # noqa: E402
from edgeworkers.cloud.openapi import DEFINITIONS_FILE, META, SCHEMA_PACKAGE  # noqa: E402

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
META_TYPES = {"ObjectMeta", "ListMeta", "OwnerReference", "ManagedFieldsEntry", "Status", "StatusDetails",
              "StatusCause", "LabelSelector", "LabelSelectorRequirement", "Condition", "DeleteOptions",
              "Preconditions", "UserInfo"}


def short(model: str) -> str:
    """``V1PodSpec`` -> ``PodSpec``; ``CoreV1Event`` -> ``Event``; ``V1beta1X`` -> ``X``."""
    rest = model.removeprefix("Core").removeprefix("Events")
    if rest.startswith("V") and rest[1:2].isdigit():
        rest = rest[1:].lstrip("0123456789")
        for stage in ("alpha", "beta"):
            if rest.startswith(stage):
                rest = rest[len(stage):].lstrip("0123456789")
    return rest


def model_class(kind: str, version: str) -> str | None:
    import kubernetes.client.models as models

    v = version[0].upper() + version[1:]
    return next((name for name in (f"{v}{kind}", f"Core{v}{kind}") if hasattr(models, name)), None)


class Converter:
    """Pydantic's JSON schemas of the client's models, as Kubernetes writes OpenAPI v2 definitions."""

    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}  # model class -> definition name

    def name(self, model: str, package: str) -> str:
        if model not in self.names:
            kind = short(model)
            self.names[model] = f"{META if kind in META_TYPES else package}.{kind}"
        return self.names[model]

    def add(self, model: str, package: str) -> str:
        import kubernetes.client.models as models

        name = self.name(model, package)
        if name in self.definitions:
            return name
        cls = getattr(models, model)
        schema = cls.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        self.definitions[name] = {}  # reserved: a recursive type refers to itself
        for sub in schema.get("$defs", {}):
            self.name(sub, package)
        for sub in schema.get("$defs", {}):
            self.add(sub, package)
        fields = {(f.serialization_alias or attr): f for attr, f in cls.model_fields.items()}
        properties = {}
        for prop, value in schema.get("properties", {}).items():
            converted = self.schema(value, package)
            description = value.get("description") or getattr(fields.get(prop), "description", None)
            if description:
                converted["description"] = description
            properties[prop] = converted
        definition: dict[str, Any] = {"type": "object", "properties": properties}
        if doc := (schema.get("description") or "").split("\n\nAttributes:")[0].strip():
            definition["description"] = doc
        if schema.get("required"):
            definition["required"] = sorted(schema["required"])
        self.definitions[name] = definition
        return name

    def schema(self, value: dict[str, Any], package: str) -> dict[str, Any]:
        if "anyOf" in value:
            options = [o for o in value["anyOf"] if o.get("type") != "null"]
            if len(options) == 1:
                return self.schema(options[0], package)
            if sorted(o.get("type", "") for o in options) == ["integer", "string"]:
                self.definitions[INT_OR_STRING] = {
                    "type": "string", "format": "int-or-string",
                    "description": "IntOrString is a type that can hold an int32 or a string."}
                return {"$ref": f"#/definitions/{INT_OR_STRING}"}
            return {}
        if "$ref" in value:
            return {"$ref": "#/definitions/" + self.name(value["$ref"].rsplit("/", 1)[1], package)}
        out: dict[str, Any] = {k: value[k] for k in ("type", "format") if k in value}
        if value.get("type") == "array":
            out["items"] = self.schema(value.get("items", {}), package)
        if value.get("type") == "object" and isinstance(value.get("additionalProperties"), dict):
            out["additionalProperties"] = self.schema(value["additionalProperties"], package)
        return out


def build() -> dict[str, dict[str, Any]]:
    converter = Converter()
    for served in SERVED:
        for resource in served.resources:
            if "/" in resource.name:
                continue
            package = SCHEMA_PACKAGE[served.group]
            for kind in (resource.kind, f"{resource.kind}List"):
                model = model_class(kind, served.version)
                if model is None:
                    continue  # not in the client (metrics.k8s.io): openapi.py gives it its minimal schema
                name = converter.add(model, package)
                gvk = {"group": served.group, "version": served.version, "kind": kind}
                converter.definitions[name]["x-kubernetes-group-version-kind"] = [gvk]
    return dict(sorted(converter.definitions.items()))


def main() -> None:
    data = json.dumps(build(), sort_keys=True, separators=(",", ":")).encode()
    (ROOT / DEFINITIONS_FILE).write_bytes(gzip.compress(data, mtime=0))
    print(f"{DEFINITIONS_FILE}: {len(data)} bytes, {len(gzip.compress(data))} compressed")


if __name__ == "__main__":
    main()
