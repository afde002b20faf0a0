"""Fixtures the bridge's tests share: MetaManager's store, outbox and status manager on fakeredis, and the fake cloud."""
from __future__ import annotations

import pytest

from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.status.manager import StatusManager
from tests.unit.bridge.fakecloud import FakeApi


@pytest.fixture
def store(fake_redis) -> MetaStore:
    return MetaStore(fake_redis)


@pytest.fixture
def outbox(fake_redis) -> Outbox:
    return Outbox(fake_redis)


@pytest.fixture
def status(store, outbox) -> StatusManager:
    return StatusManager(store, outbox)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()
