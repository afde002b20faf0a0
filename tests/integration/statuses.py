"""Reading the node's last status of a pod in integration tests, as the status manager keeps it."""
from __future__ import annotations

from typing import Any

from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.status.manager import StatusManager


def pod_status(store: MetaStore, key: str) -> dict[str, Any] | None:
    return StatusManager(store, Outbox(store.redis)).get(key)
