"""The downward API's values: a pod's fields and its containers' resources, for env ``valueFrom`` and downwardAPI
volumes alike (kubelet's ``fieldpath.ExtractFieldPathAsString`` and ``resource.ExtractContainerResourceValue``).

Pure: what only the node knows (the pod's IP once its sandbox runs, the host's IP, the node's allocatable CPU and
memory, which stand for a missing limit as in kubelet) comes in a ``PodFacts``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from edgeworkers.k8s.pod import Container, Pod
from edgeworkers.k8s.quantity import parse_quantity


class FieldError(ValueError):
    """A field path or resource the downward API does not serve (validation keeps them out of stored pods)."""


@dataclass(frozen=True)
class PodFacts:
    """What the sync knows about a pod beyond its spec."""

    host_ip: str = ""
    pod_ips: tuple[str, ...] = ()
    node_cpu_millis: int = field(default_factory=lambda: (os.cpu_count() or 1) * 1000)
    node_memory_bytes: int = field(default_factory=lambda: _total_memory())

    @property
    def pod_ip(self) -> str:
        return self.pod_ips[0] if self.pod_ips else ""


def _total_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string: double quotes, backslash escapes, printable Unicode kept."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def format_map(values: dict[str, str] | None) -> str:
    """Labels or annotations as a downwardAPI file holds them: ``key="value"`` lines, sorted, no final newline."""
    return "\n".join(f"{key}={go_quote(value)}" for key, value in sorted((values or {}).items()))


def _subscript(field_path: str) -> tuple[str, str] | None:
    if not field_path.endswith("']"):
        return None
    head, sep, key = field_path[:-2].partition("['")
    return (head, key) if sep else None


def field_value(pod: Pod, field_path: str, facts: PodFacts) -> str:
    """The value of ``field_path`` (``metadata.labels['app']``, ``status.podIP`` ...) for ``pod``."""
    meta, spec = pod.metadata, pod.spec
    subscript = _subscript(field_path)
    if subscript is not None:
        head, key = subscript
        if head == "metadata.labels":
            return (meta.labels or {}).get(key, "")
        if head == "metadata.annotations":
            return (meta.annotations or {}).get(key, "")
        raise FieldError(f"field path {field_path!r} does not support a subscript")
    values = {
        "metadata.name": lambda: meta.name or "",
        "metadata.namespace": lambda: meta.namespace or "default",
        "metadata.uid": lambda: meta.uid or "",
        "metadata.labels": lambda: format_map(meta.labels),
        "metadata.annotations": lambda: format_map(meta.annotations),
        "spec.nodeName": lambda: spec.node_name or "",
        "spec.host": lambda: spec.node_name or "",
        "spec.serviceAccountName": lambda: spec.service_account_name or spec.service_account or "",
        "spec.restartPolicy": lambda: spec.restart_policy or "",
        "spec.schedulerName": lambda: spec.scheduler_name or "",
        "status.hostIP": lambda: facts.host_ip,
        "status.hostIPs": lambda: facts.host_ip,
        "status.podIP": lambda: facts.pod_ip,
        "status.podIPs": lambda: ",".join(facts.pod_ips),
        "status.phase": lambda: (pod.status.phase if pod.status else None) or "Pending",
    }
    if field_path not in values:
        raise FieldError(f"unsupported field path {field_path!r}")
    return values[field_path]()


def _container(pod: Pod, name: str) -> Container:
    for container in pod.spec.all_containers:
        if container.name == name:
            return container
    raise FieldError(f'container "{name}" is not in the pod')


def resource_value(pod: Pod, container_name: str, resource: str, divisor: str | None, facts: PodFacts) -> str:
    """``limits.cpu``, ``requests.memory`` ... of a container, divided by ``divisor`` and rounded up, as kubelet
    writes them; a missing limit is the node's allocatable amount, a missing request 0 (requests default to limits).
    """
    container = _container(pod, container_name)
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise FieldError(f"unsupported resource {resource!r}")
    resources = container.resources
    limits = (resources.limits if resources else None) or {}
    requests = {**limits, **((resources.requests if resources else None) or {})}
    declared = (limits if kind == "limits" else requests).get(name)
    divide_by = parse_quantity(divisor or "1")
    if divide_by == 0:
        divide_by = parse_quantity("1")
    if name == "cpu":
        millis = math.ceil(parse_quantity(declared) * 1000) if declared is not None else (
            facts.node_cpu_millis if kind == "limits" else 0)
        return str(math.ceil(millis / math.ceil(divide_by * 1000)))
    if name == "memory" and declared is None and kind == "limits":
        amount = facts.node_memory_bytes
    else:
        amount = math.ceil(parse_quantity(declared)) if declared is not None else 0
    return str(math.ceil(amount / divide_by))
