"""The PLEG: the pure event diff from a table, then GenericPLEG on a FakeRuntime with a controllable clock."""
from __future__ import annotations

import fakeredis
import pytest

from edgeworkers.constants import KEY_PLEG_LAST_RELIST
from edgeworkers.pleg import (
    EventType,
    GenericPLEG,
    compute_events,
    health_error,
    pods_with_events,
    recorded_health_error,
)
from edgeworkers.runtime.errors import RuntimeUnavailable
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import Container, ContainerConfig, ContainerID, ContainerState, PodRef, SandboxConfig
from tests.unit.clock import Clock

POD = PodRef("uid-1", "default", "web")
OTHER = PodRef("uid-2", "default", "db")
STARTED, DIED, REMOVED, CHANGED = (EventType.CONTAINER_STARTED, EventType.CONTAINER_DIED,
                                   EventType.CONTAINER_REMOVED, EventType.CONTAINER_CHANGED)  # fmt: skip


def container(state: ContainerState | None, ident: str = "c1", pod: PodRef = POD) -> dict[str, Container]:
    if state is None:
        return {}
    return {ident: Container(ContainerID("docker", ident), pod, "app", "busybox", "sha", state)}


@pytest.mark.parametrize(
    ("before", "after", "events"),
    [
        (None, None, []),
        (None, ContainerState.RUNNING, [STARTED]),
        (None, ContainerState.EXITED, [DIED]),  # started and died between two relists
        (None, ContainerState.CREATED, [CHANGED]),  # kubelet counts "created" as unknown
        (ContainerState.CREATED, ContainerState.RUNNING, [STARTED]),
        (ContainerState.RUNNING, ContainerState.RUNNING, []),
        (ContainerState.RUNNING, ContainerState.EXITED, [DIED]),
        (ContainerState.RUNNING, None, [DIED, REMOVED]),
        (ContainerState.EXITED, None, [REMOVED]),
        (ContainerState.EXITED, ContainerState.EXITED, []),
        (ContainerState.EXITED, ContainerState.RUNNING, [STARTED]),  # docker start of a dead one
        (ContainerState.RUNNING, ContainerState.UNKNOWN, [CHANGED]),
        (ContainerState.UNKNOWN, ContainerState.UNKNOWN, []),
        (ContainerState.CREATED, None, [DIED, REMOVED]),
    ],
)
def test_events_between_two_relists(before, after, events) -> None:
    found = compute_events(container(before), container(after))
    assert [e.type for e in found] == events
    assert all(e.pod == POD and e.container_id == ContainerID("docker", "c1") for e in found)


def test_events_name_each_pod_once_in_order() -> None:
    old = {**container(ContainerState.RUNNING, "a"), **container(ContainerState.RUNNING, "b", OTHER)}
    new = {**container(ContainerState.EXITED, "a"), **container(ContainerState.RUNNING, "c")}
    events = compute_events(old, new)
    assert [(e.container_id.id, e.type) for e in events] == [("a", DIED), ("b", DIED), ("b", REMOVED), ("c", STARTED)]
    assert pods_with_events(events) == ["default/web", "default/db"]


@pytest.mark.parametrize(
    ("last", "now", "error"),
    [
        (None, 1000.0, ""),  # nothing recorded: no scheduler has run here yet
        (1000.0, 1000.0, ""),
        (1000.0, 1180.0, ""),  # exactly the threshold
        (1000.0, 1181.0, "PLEG is not healthy: pleg was last seen active 3m1s ago; threshold is 3m0s"),
    ],
)
def test_health_from_the_last_relist(last, now, error) -> None:
    assert health_error(last, now) == error


@pytest.fixture
def clock() -> Clock:
    return Clock(100.0)


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime("node-a")


def test_a_relist_reports_what_changed_since_the_last_one(fake: FakeRuntime, clock: Clock) -> None:
    pleg = GenericPLEG(fake, clock)
    sandbox = fake.create_sandbox(SandboxConfig(POD))
    assert [(e.type, e.container_name) for e in pleg.relist()] == [(STARTED, "POD")]
    app = fake.create_container(sandbox, POD, ContainerConfig("app", "busybox"))
    fake.start_container(app)
    assert [(e.type, e.container_name) for e in pleg.relist()] == [(STARTED, "app")]
    assert pleg.relist() == []
    fake.exit(app, 3)
    assert [(e.type, e.container_id) for e in pleg.relist()] == [(DIED, app)]
    fake.remove_container(app)
    assert [e.type for e in pleg.relist()] == [REMOVED]


def test_one_relist_is_one_node_wide_list_call(fake: FakeRuntime, clock: Clock) -> None:
    pleg = GenericPLEG(fake, clock)
    fake.create_sandbox(SandboxConfig(POD))
    fake.calls.clear()
    pleg.relist()
    assert [call[0] for call in fake.calls] == ["list_containers"]


def test_a_failed_relist_keeps_the_previous_one_and_health_follows_the_last_success(
    fake: FakeRuntime, clock: Clock
) -> None:
    pleg = GenericPLEG(fake, clock, threshold_s=180)
    sandbox = fake.create_sandbox(SandboxConfig(POD))
    pleg.relist()
    assert pleg.healthy() == (True, "")
    fake.fail("list_containers", RuntimeUnavailable("dockerd away"))
    fake.exit(sandbox, 137)
    clock.now += 181
    with pytest.raises(RuntimeUnavailable):
        pleg.relist()
    healthy, why = pleg.healthy()
    assert not healthy and why.startswith("PLEG is not healthy: pleg was last seen active 3m1s ago")
    assert [e.type for e in pleg.relist()] == [DIED]  # what happened meanwhile is reported once back
    assert pleg.healthy() == (True, "")


def test_before_any_relist_health_counts_from_the_start(fake: FakeRuntime, clock: Clock) -> None:
    pleg = GenericPLEG(fake, clock, threshold_s=180)
    assert pleg.healthy()[0]
    clock.now += 200
    assert not pleg.healthy()[0]


def test_reset_reports_every_container_again(fake: FakeRuntime, clock: Clock) -> None:
    pleg = GenericPLEG(fake, clock)
    fake.create_sandbox(SandboxConfig(POD))
    pleg.relist()
    pleg.reset()
    assert [e.type for e in pleg.relist()] == [STARTED]


def test_the_node_reads_the_health_the_scheduler_records() -> None:
    client = fakeredis.FakeRedis()
    assert recorded_health_error(client, 1000.0) == ""
    client.set(KEY_PLEG_LAST_RELIST, "700.5")
    assert recorded_health_error(client, 1000.0).startswith("PLEG is not healthy")
    assert recorded_health_error(client, 800.0) == ""
