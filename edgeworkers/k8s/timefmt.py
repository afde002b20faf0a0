"""Kubernetes' two time formats, the one place that writes them: ``Time`` (RFC 3339, seconds, UTC, as
``metav1.Time`` marshals) and ``MicroTime`` (microseconds, for Leases' renewTime and events' eventTime)."""
from __future__ import annotations

from datetime import UTC, datetime


def _moment(when: datetime | float | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    if isinstance(when, datetime):
        return when.astimezone(UTC)
    return datetime.fromtimestamp(when, UTC)


def format_time(when: datetime | float | None = None) -> str:
    """A Kubernetes Time of ``when`` (a datetime or a Unix time; now when None)."""
    return _moment(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(when: datetime | float | None = None) -> str:
    """A Kubernetes MicroTime of ``when`` (a datetime or a Unix time; now when None)."""
    return _moment(when).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
