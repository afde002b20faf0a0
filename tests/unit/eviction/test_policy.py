"""eviction.policy: thresholds from settings, when they are met, the conditions, the rank order and the messages."""
import re
from decimal import Decimal

import pytest

from edgeworkers.config import Settings
from edgeworkers.eviction.policy import (
    AGENTFS_AVAILABLE,
    IMAGEFS_AVAILABLE,
    IMAGEFS_INODES_FREE,
    MEMORY_AVAILABLE,
    NODEFS_AVAILABLE,
    NODEFS_INODES_FREE,
    PID_AVAILABLE,
    RECLAIM,
    Observation,
    PodUsage,
    Threshold,
    eviction_message,
    node_conditions,
    parse_threshold,
    rank,
    thresholds_from,
    thresholds_met,
)

Mi, Gi = 1024**2, 1024**3
DEFAULTS = thresholds_from(Settings())


def test_the_defaults_are_kubelets_hard_thresholds():
    assert {t.signal: t.text for t in DEFAULTS} == {
        MEMORY_AVAILABLE: "100Mi", NODEFS_AVAILABLE: "10%", NODEFS_INODES_FREE: "5%", IMAGEFS_AVAILABLE: "15%",
        IMAGEFS_INODES_FREE: "5%", PID_AVAILABLE: "10%", AGENTFS_AVAILABLE: "256Mi",
    }


@pytest.mark.parametrize("text, want", [
    ("100Mi", Threshold(MEMORY_AVAILABLE, "100Mi", quantity=100 * Mi)),
    ("10%", Threshold(MEMORY_AVAILABLE, "10%", fraction=Decimal("0.1"))),
    ("0", Threshold(MEMORY_AVAILABLE, "0", quantity=0)),
    ("12.5%", Threshold(MEMORY_AVAILABLE, "12.5%", fraction=Decimal("0.125"))),
])
def test_parse_threshold(text, want):
    assert parse_threshold(MEMORY_AVAILABLE, text) == want


@pytest.mark.parametrize("text, error", [
    ("101%", "eviction percentage threshold memory.available must be >= 0% and <= 100%: 101%"),
    ("x%", "must be >= 0% and <= 100%"),
    ("lots", "must be a positive quantity or a percentage: 'lots'"),
    ("-1Mi", "must be a positive quantity"),
])
def test_a_bad_threshold_is_refused_in_kubelets_words(text, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        parse_threshold(MEMORY_AVAILABLE, text)


def test_a_bad_setting_is_named():
    with pytest.raises(ValueError, match="EDGEWORKERS_EVICTION_HARD_NODEFS_INODES_FREE: "):
        thresholds_from(Settings(eviction_hard_nodefs_inodes_free="many"))


HEALTHY = {
    MEMORY_AVAILABLE: Observation(4 * Gi, 8 * Gi), NODEFS_AVAILABLE: Observation(50 * Gi, 100 * Gi),
    NODEFS_INODES_FREE: Observation(900, 1000), IMAGEFS_AVAILABLE: Observation(50 * Gi, 100 * Gi),
    IMAGEFS_INODES_FREE: Observation(900, 1000), PID_AVAILABLE: Observation(30000, 32768),
    AGENTFS_AVAILABLE: Observation(50 * Gi, 100 * Gi),
}


@pytest.mark.parametrize("changes, met, conditions", [
    ({}, [], set()),
    ({MEMORY_AVAILABLE: Observation(99 * Mi, 8 * Gi)}, [MEMORY_AVAILABLE], {"MemoryPressure"}),
    ({MEMORY_AVAILABLE: Observation(100 * Mi, 8 * Gi)}, [], set()),  # met only strictly below
    ({NODEFS_AVAILABLE: Observation(9 * Gi, 100 * Gi)}, [NODEFS_AVAILABLE], {"DiskPressure"}),
    ({NODEFS_INODES_FREE: Observation(49, 1000)}, [NODEFS_INODES_FREE], {"DiskPressure"}),
    ({IMAGEFS_AVAILABLE: Observation(14 * Gi, 100 * Gi)}, [IMAGEFS_AVAILABLE], {"DiskPressure"}),
    ({IMAGEFS_AVAILABLE: Observation(15 * Gi, 100 * Gi)}, [], set()),
    ({IMAGEFS_INODES_FREE: Observation(10, 1000)}, [IMAGEFS_INODES_FREE], {"DiskPressure"}),
    ({PID_AVAILABLE: Observation(3000, 32768)}, [PID_AVAILABLE], {"PIDPressure"}),
    ({AGENTFS_AVAILABLE: Observation(255 * Mi, 100 * Gi)}, [AGENTFS_AVAILABLE], {"DiskPressure"}),
    ({PID_AVAILABLE: Observation(1, 32768), IMAGEFS_AVAILABLE: Observation(1, 100), MEMORY_AVAILABLE: Observation(1, 8)},
     [MEMORY_AVAILABLE, IMAGEFS_AVAILABLE, PID_AVAILABLE], {"MemoryPressure", "DiskPressure", "PIDPressure"}),
])
def test_thresholds_met_and_the_conditions_they_raise(changes, met, conditions):
    found = thresholds_met(DEFAULTS, {**HEALTHY, **changes})
    assert [t.signal for t in found] == met
    assert node_conditions(found) == conditions


def test_a_signal_not_observed_meets_nothing_and_zero_disables_a_threshold():
    assert thresholds_met(DEFAULTS, {}) == []
    off = [parse_threshold(MEMORY_AVAILABLE, "0")]
    assert thresholds_met(off, {MEMORY_AVAILABLE: Observation(0, 8 * Gi)}) == []


def test_disk_signals_reclaim_containers_and_images_first_memory_and_pids_nothing():
    assert RECLAIM[NODEFS_AVAILABLE] == RECLAIM[IMAGEFS_AVAILABLE] == RECLAIM[AGENTFS_AVAILABLE] == (
        "containers", "images")
    assert RECLAIM[MEMORY_AVAILABLE] == RECLAIM[PID_AVAILABLE] == ()


def pod(key, qos="Burstable", priority=0, usage=0, request=0):
    return PodUsage(key, qos, priority, usage, request)


@pytest.mark.parametrize("pods, order", [
    # QoS class first: BestEffort, then Burstable, then Guaranteed, whatever the usage.
    ([pod("g", "Guaranteed", usage=9 * Gi), pod("b", "Burstable", usage=1), pod("e", "BestEffort", usage=1)],
     ["e", "b", "g"]),
    # Within a class: above its requests first, then the lowest priority, then the most above its request.
    ([pod("under", usage=1 * Gi, request=2 * Gi), pod("over", usage=3 * Gi, request=2 * Gi)], ["over", "under"]),
    ([pod("high", priority=100, usage=5, request=1), pod("low", priority=-5, usage=2, request=1)], ["low", "high"]),
    ([pod("a", usage=2 * Gi), pod("b", usage=5 * Gi), pod("c", usage=3 * Gi)], ["b", "c", "a"]),
    ([pod("b"), pod("a")], ["a", "b"]),  # ties: by key, for a stable order
])
def test_rank_orders_pods_as_kubelet_evicts_them(pods, order):
    assert [p.key for p in rank(pods)] == order


@pytest.mark.parametrize("threshold, observation, message", [
    (parse_threshold(MEMORY_AVAILABLE, "100Mi"), Observation(50 * Mi, 8 * Gi),
     "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. "),
    (parse_threshold(IMAGEFS_AVAILABLE, "15%"), Observation(5 * Gi + 3 * 1024, 100 * Gi),
     "The node was low on resource: ephemeral-storage. Threshold quantity: 15Gi, available: 5242883Ki. "),
    (parse_threshold(NODEFS_INODES_FREE, "5%"), Observation(10, 1000),
     "The node was low on resource: inodes. Threshold quantity: 50, available: 10. "),
    (parse_threshold(PID_AVAILABLE, "10%"), Observation(-3, 100),
     "The node was low on resource: pids. Threshold quantity: 10, available: 0. "),
])
def test_eviction_message_is_kubelets(threshold, observation, message):
    assert eviction_message(threshold, observation) == message
