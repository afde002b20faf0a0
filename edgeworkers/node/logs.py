"""Which container's logs a kubelet-style log request means, and its options: pure functions.

A pod's container may exist in several instances (one per restart, each labelled with its restart
count); the current one is the newest, ``previous`` the one before it, as ``kubectl logs -p`` expects.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from edgeworkers.runtime.types import Container, ContainerState

_TRUE = ("true", "1")
_FALSE = ("false", "0", "")


class LogRequestError(Exception):
    """The request cannot be served; ``code`` is the HTTP status to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: datetime | None = None
    limit_bytes: int | None = None


def parse_log_options(query: Mapping[str, str], now: datetime) -> LogOptions:
    """kubelet's query parameters (``follow``, ``previous``, ``timestamps``, ``tailLines``,
    ``sinceSeconds``, ``sinceTime``, ``limitBytes``); an invalid value is a 400."""
    since = None
    if "sinceSeconds" in query and "sinceTime" in query:
        raise LogRequestError(400, "at most one of sinceTime or sinceSeconds may be specified")
    if "sinceSeconds" in query:
        since = now - timedelta(seconds=_positive(query, "sinceSeconds"))
    elif "sinceTime" in query:
        try:
            since = datetime.fromisoformat(query["sinceTime"])
        except ValueError:
            raise LogRequestError(400, f"sinceTime: Invalid value: {query['sinceTime']!r}") from None
    return LogOptions(
        follow=_flag(query, "follow"),
        previous=_flag(query, "previous"),
        timestamps=_flag(query, "timestamps"),
        tail_lines=_natural(query, "tailLines") if "tailLines" in query else None,
        since=since,
        limit_bytes=_positive(query, "limitBytes") if "limitBytes" in query else None,
    )


def select_container(
    containers: Iterable[Container], namespace: str, pod: str, container: str, previous: bool = False
) -> Container:
    """The instance of ``container`` in pod ``namespace/pod`` whose logs are asked for."""
    instances = sorted(
        (
            c for c in containers
            if not c.is_sandbox and c.pod.namespace == namespace and c.pod.name == pod and c.name == container
        ),
        key=lambda c: (c.created_at.timestamp() if c.created_at else 0.0, c.restart_count),
        reverse=True,
    )
    if not instances:
        raise LogRequestError(404, f'container "{container}" in pod "{pod}" is not available')
    if not previous:
        return instances[0]
    earlier = [c for c in instances[1:] if c.pod.uid == instances[0].pod.uid and c.state == ContainerState.EXITED]
    if not earlier:
        raise LogRequestError(400, f'previous terminated container "{container}" in pod "{pod}" not found')
    return earlier[0]


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise LogRequestError(400, f"{name}: Invalid value: {query[name]!r}: must be true or false")


def _natural(query: Mapping[str, str], name: str) -> int:
    try:
        value = int(query[name])
    except ValueError:
        value = -1
    if value < 0:
        raise LogRequestError(400, f"{name}: Invalid value: {query[name]!r}: must be greater than or equal to 0")
    return value


def _positive(query: Mapping[str, str], name: str) -> int:
    value = _natural(query, name)
    if value == 0:
        raise LogRequestError(400, f"{name}: Invalid value: {query[name]!r}: must be greater than 0")
    return value
