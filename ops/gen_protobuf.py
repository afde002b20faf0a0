#!/usr/bin/env python3
"""Write ``edgeworkers/cloud/protobuf_schema.json.gz``: the protobuf field tables of every kind the cloud serves (and
its List), for ``edgeworkers/cloud/protobuf.py`` to decode the bodies kubectl's typed clients send.

Field numbers and types come from Kubernetes' own ``generated.proto`` files; JSON names, ``omitempty`` and which
fields are Go pointers (a nil pointer is absent from the wire, a zero non-pointer field is written) from the Go
structs' tags in ``types.go``, matched by field number. Both are read at ``TAG`` from clones of k8s.io/api and
k8s.io/apimachinery (git directories: read with ``git show``, or checkouts of that tag):

    git clone --bare https://github.com/kubernetes/api /tmp/api
    git clone --bare https://github.com/kubernetes/apimachinery /tmp/apimachinery
    .venv/bin/python ops/gen_protobuf.py /tmp/api /tmp/apimachinery

Run it again after adding a served kind; ``tests/unit/cloud/test_protobuf.py`` fails while a served kind is missing.
"""
from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeworkers.cloud.discovery import SERVED  # noqa: E402
from edgeworkers.cloud.protobuf import INLINE, OMITEMPTY, POINTER, REPEATED, SCALARS, SCHEMA_FILE, SPECIAL  # noqa: E402

TAG = "v0.32.4"  # kubectl 1.32.4's k8s.io/api and k8s.io/apimachinery
API_PACKAGES = {"": "core/v1", "apps": "apps/v1", "batch": "batch/v1", "discovery.k8s.io": "discovery/v1",
                "coordination.k8s.io": "coordination/v1", "authentication.k8s.io": "authentication/v1",
                "autoscaling": "autoscaling/v1"}
APIMACHINERY = {"pkg/apis/meta/v1": ["types.go"], "pkg/runtime": [], "pkg/runtime/schema": [],
                "pkg/util/intstr": [], "pkg/api/resource": []}


# ---- the proto2 subset of Kubernetes' generated.proto files ----

@dataclass
class ProtoField:
    name: str
    number: int
    type: str  # a scalar, a message's full name once resolved, or "map"
    repeated: bool = False
    value_type: str = ""  # a map's value type


@dataclass
class Message:
    name: str  # full name: package.Outer.Inner
    fields: list[ProtoField] = field(default_factory=list)


_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|("(?:[^"\\]|\\.)*")|([A-Za-z_.][\w.]*|\d+|[{}<>=;,\[\]()])', re.S)


def tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected character {text[pos]!r} at {pos}")
        pos = match.end()
        if match.group(1) or match.group(2):
            out.append(match.group(1) or match.group(2))
    return out


def parse_proto(text: str) -> dict[str, Message]:
    """The messages of one ``.proto`` file by full name, field types as written (resolved by ``resolve``)."""
    toks, pos, package = tokens(text), 0, ""
    messages: dict[str, Message] = {}
    scopes: list[Message] = []

    def take(expected: str | None = None) -> str:
        nonlocal pos
        tok = toks[pos]
        if expected is not None and tok != expected:
            raise ValueError(f"expected {expected!r}, found {tok!r}")
        pos += 1
        return tok

    def skip_statement() -> None:
        while take() != ";":
            pass

    while pos < len(toks):
        tok = take()
        if tok in ("syntax", "import", "option"):
            skip_statement()
        elif tok == "package":
            package = take()
            take(";")
        elif tok == "message":
            prefix = scopes[-1].name if scopes else package
            message = Message(f"{prefix}.{take()}")
            take("{")
            messages[message.name] = message
            scopes.append(message)
        elif tok == "}" and scopes:
            scopes.pop()
        elif tok in ("optional", "repeated", "required", "map") and scopes:
            if tok == "map":
                take("<")
                take()  # the key: always string in these files
                take(",")
                value_type = take()
                take(">")
                type_, repeated = "map", False
            else:
                type_, value_type, repeated = take(), "", tok == "repeated"
            name = take()
            take("=")
            number = int(take())
            skip_statement()  # [options];
            scopes[-1].fields.append(ProtoField(name, number, type_, repeated, value_type))
        else:
            raise ValueError(f"unsupported proto syntax at {tok!r}")
    for message in messages.values():  # remember the scope a relative type name is resolved from
        for f in message.fields:
            for attr in ("type", "value_type"):
                value = getattr(f, attr)
                if value and value not in SCALARS and value != "map" and not value.startswith("."):
                    setattr(f, attr, f"{message.name}:{value}")
    return messages


def resolve(messages: dict[str, Message]) -> None:
    """Replace each message type name by the full name of the message it names, as protoc resolves scopes."""
    def full(name: str) -> str:
        if not name or name in SCALARS or name == "map":
            return name
        if name.startswith("."):
            found = name[1:]
        else:
            scope, _, relative = name.partition(":")
            parts = scope.split(".")
            found = next((c for c in (".".join(parts[:i] + [relative]) for i in range(len(parts), -1, -1))
                          if c in messages), "")
        if found not in messages:
            raise ValueError(f"unknown message type {name}")
        return found

    for message in messages.values():
        for f in message.fields:
            f.type, f.value_type = full(f.type), full(f.value_type)


# ---- the Go structs: JSON names, omitempty, pointers, inline ----

@dataclass(frozen=True)
class GoField:
    json: str
    pointer: bool
    omitempty: bool
    inline: bool


_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
_GO_FIELD = re.compile(r"^\s*(?:\w+\s+)?(\S+)\s+`([^`]*)`", re.M)


def parse_go(text: str) -> dict[str, dict[int, GoField]]:
    """struct name -> protobuf field number -> what its Go tags say."""
    structs: dict[str, dict[int, GoField]] = {}
    for name, body in _STRUCT.findall(text):
        fields: dict[int, GoField] = {}
        for line in body.splitlines():
            if line.strip().startswith("//"):
                continue
            match = _GO_FIELD.match(line)
            if match is None:
                continue
            go_type, tags = match.groups()
            proto = re.search(r'protobuf:"[^,]*,(\d+),', tags)
            json_tag = re.search(r'json:"([^"]*)"', tags)
            if proto is None or json_tag is None:
                continue
            json_name, *options = json_tag.group(1).split(",")
            fields[int(proto.group(1))] = GoField(json_name, go_type.startswith("*"), "omitempty" in options,
                                                  "inline" in options)
        structs[name] = fields
    return structs


# ---- the schema ----

def source(repo: Path, path: str) -> str:
    """A file of ``repo`` at ``TAG``: a git directory (a bare clone or a mirror) or a checkout of that tag."""
    if (repo / path).is_file():
        return (repo / path).read_text()
    return subprocess.run(["git", "-C", str(repo), "show", f"{TAG}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def roots() -> dict[str, str]:
    """``apiVersion/Kind`` -> its message, for every served kind and its List (and the Scale subresource)."""
    out = {}
    for served in SERVED:
        for resource in served.resources:
            group, version = resource.group_version or (served.group, served.version)
            if group not in API_PACKAGES:
                continue  # metrics.k8s.io: read-only, its types are not in k8s.io/api
            package = "k8s.io.api." + API_PACKAGES[group].replace("/", ".")
            api_version = f"{group}/{version}" if group else version
            for kind in (resource.kind, f"{resource.kind}List"):
                out[f"{api_version}/{kind}"] = f"{package}.{kind}"
    return out


def build(api: Path, apimachinery: Path) -> dict:
    messages: dict[str, Message] = {}
    structs: dict[str, dict[str, dict[int, GoField]]] = {}  # proto package -> struct -> fields
    sources = [(api, path, ["types.go"]) for path in API_PACKAGES.values()]
    sources += [(apimachinery, path, go_files) for path, go_files in APIMACHINERY.items()]
    for repo, path, go_files in sources:
        messages.update(parse_proto(source(repo, f"{path}/generated.proto")))
        package = ("k8s.io.api." if repo == api else "k8s.io.apimachinery.") + path.replace("/", ".")
        for go_file in go_files:
            structs.setdefault(package, {}).update(parse_go(source(repo, f"{path}/{go_file}")))
    resolve(messages)
    kinds = {gvk: name for gvk, name in roots().items() if name in messages}
    schema: dict[str, list] = {}
    pending = sorted(set(kinds.values()))
    while pending:
        name = pending.pop()
        if name in schema or name in SPECIAL:
            continue
        package, _, short = name.rpartition(".")
        go = structs.get(package, {}).get(short)
        if go is None:
            raise ValueError(f"no Go struct for {name}")
        rows = []
        for f in sorted(messages[name].fields, key=lambda f: f.number):
            tags = go.get(f.number)
            if tags is None or tags.json == "-":
                raise ValueError(f"{name}.{f.name} ({f.number}) has no JSON name in its Go struct")
            flags = (REPEATED * f.repeated | POINTER * tags.pointer | OMITEMPTY * tags.omitempty
                     | INLINE * tags.inline)
            rows.append([f.number, tags.json, ["map", f.value_type] if f.type == "map" else f.type, flags])
            pending += [t for t in (f.type, f.value_type) if t in messages]
        schema[name] = rows
    return {"source": f"k8s.io/api and k8s.io/apimachinery {TAG}", "kinds": dict(sorted(kinds.items())),
            "messages": dict(sorted(schema.items()))}


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = json.dumps(build(Path(sys.argv[1]), Path(sys.argv[2])), separators=(",", ":")).encode()
    (ROOT / SCHEMA_FILE).write_bytes(gzip.compress(data, mtime=0))
    print(f"{SCHEMA_FILE.relative_to(ROOT)}: {len(data)} bytes, {len(gzip.compress(data, mtime=0))} compressed")


if __name__ == "__main__":
    main()
