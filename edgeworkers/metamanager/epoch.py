"""MetaManager's epoch: how the agent notices that its Redis lost its data (a FLUSHALL, a restart without persistence).

Once the bridge has stored a complete list of the node's pods from the cloud, it writes a random token under
``constants.KEY_EPOCH`` (only when none is there): from then on MetaManager holds what the cloud wants. A Redis that lost
its data has no epoch, so:

- the bridge, which looks every few seconds, lists the node's pods again at once and writes a new epoch;
- whatever would kill a pod because MetaManager does not know it (the orphan cleanup, a worker's sync of an absent
  pod) waits meanwhile. Such a decision reads the epoch before and after reading the desired state (``Epoch.known``)
  and trusts an absence only when both are the same token: a loss and a relist in between change the token.

The token is also kept in the node's data dir (``EPOCH_FILE``), so a loss while the agent was down is logged as such
when the bridge starts. A node that has never reached its cloud has no epoch: its orphans wait until it does.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis

from edgeworkers.constants import KEY_EPOCH
from edgeworkers.privatefiles import ensure_private_dir, write_private

T = TypeVar("T")
EPOCH_FILE = "redis-epoch"


class Epoch:
    """The epoch of the agent's Redis; ``data_dir``: where its last token is recorded (the bridge's; None: nowhere)."""

    def __init__(self, client: redis.Redis, data_dir: Path | None = None) -> None:
        self._redis = client
        self._file = data_dir / EPOCH_FILE if data_dir is not None else None

    def current(self) -> str | None:
        """The token; None while MetaManager has not been filled from the cloud since the Redis's data began."""
        token = self._redis.get(KEY_EPOCH)
        return token.decode() if token is not None else None

    def establish(self) -> str:
        """Write a new token unless one is there (MetaManager now holds a complete list); return the token in force,
        recorded in the data dir."""
        self._redis.set(KEY_EPOCH, secrets.token_hex(8), nx=True)
        token = self.current() or ""
        if self._file is not None and self.recorded() != token:
            ensure_private_dir(self._file.parent)
            write_private(self._file, token.encode())
        return token

    def recorded(self) -> str | None:
        """The token last recorded in the data dir (None: none, or no data dir)."""
        if self._file is None:
            return None
        try:
            return self._file.read_text().strip() or None
        except OSError:
            return None

    def known(self, read: Callable[[], T]) -> tuple[T, bool]:
        """``read()`` (of the desired state), and whether one epoch stood around it: only then does an absence in
        what it read mean the cloud does not want the object."""
        before = self.current()
        value = read()
        return value, before is not None and self.current() == before
