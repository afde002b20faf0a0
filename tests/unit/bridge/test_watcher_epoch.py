"""The pod watcher and MetaManager's epoch: a complete list establishes it; once it is gone (the agent's Redis lost
its data) the pods are listed again, even while a watch is open, and running pods come back as they were."""
from __future__ import annotations

import pytest
import structlog

from edgeworkers import metrics
from edgeworkers.bridge.watcher import PodWatcher
from edgeworkers.metamanager.epoch import Epoch
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.status.manager import StatusManager
from tests.unit.bridge.test_watcher import NODE, FakeApi, Mirrors, listing, pod


@pytest.fixture
def epoch(fake_redis, tmp_path) -> Epoch:
    return Epoch(fake_redis, tmp_path / "data")


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def sent() -> list:
    return []


@pytest.fixture
def watcher(fake_redis, api, epoch, sent) -> PodWatcher:
    store = MetaStore(fake_redis)
    return PodWatcher(api, store, sent.append, NODE, Mirrors(), StatusManager(store, Outbox(fake_redis)),
                      jitter=lambda: 0.5, epoch=epoch)


def losses() -> float:
    return metrics.REGISTRY.get_sample_value("edgeworkers_redis_data_losses_total") or 0.0


def test_a_complete_list_establishes_the_epoch(watcher, api, epoch) -> None:
    api.lists.append(listing("10", pod("a", "5")))
    assert not watcher.check_epoch()  # nothing listed yet: the first list comes anyway
    watcher.step()
    assert epoch.current() is not None and epoch.recorded() == epoch.current()


def test_a_redis_that_lost_its_data_is_listed_again_and_its_pods_come_back_untouched(
    watcher, api, epoch, fake_redis, sent
) -> None:
    api.lists.append(listing("10", pod("a", "5")))
    watcher.step()
    before = epoch.current()
    sent.clear()
    assert not watcher.check_epoch()  # the epoch stands: nothing to do
    assert api.calls[-1][0] == "list" and len(api.calls) == 1

    fake_redis.flushdb()
    counted = losses()
    api.lists.append(listing("12", pod("a", "5"), pod("b", "11")))
    with structlog.testing.capture_logs() as logs:
        assert watcher.check_epoch()
    assert [c[0] for c in api.calls] == ["list", "list"]
    store = MetaStore(fake_redis)
    assert store.keys(POD) == {"default/a", "default/b"}
    assert epoch.current() not in (None, before)
    assert watcher.resource_version == "12"
    assert losses() == counted + 1
    assert any(entry["event"].startswith("the agent's Redis lost its data") for entry in logs)
    # Each pod queued, as new to MetaManager: its sync finds its containers as they should be (no restart).
    assert sorted((m.route.operation, m.key) for m in sent) == [("insert", "default/a"), ("insert", "default/b")]


def test_a_loss_while_the_agent_was_down_is_logged_at_its_first_list(fake_redis, api, epoch, watcher) -> None:
    epoch.establish()
    fake_redis.flushdb()  # the data dir still records the epoch
    api.lists.append(listing("3"))
    counted = losses()
    with structlog.testing.capture_logs() as logs:
        watcher.step()
    assert losses() == counted + 1
    assert any(entry["event"].startswith("the agent's Redis lost its data") for entry in logs)


def test_a_first_start_is_no_loss(api, watcher) -> None:
    api.lists.append(listing("3"))
    counted = losses()
    watcher.step()
    assert losses() == counted
