"""Event correlation as client-go's EventCorrelator (its events_cache_test.go scenarios), with a fake clock."""
from __future__ import annotations

import json

import pytest

from edgeworkers.events.correlator import (
    COMBINED_PREFIX,
    Correlated,
    CorrelatorPolicy,
    ObjectState,
    Occurrence,
    correlate,
)
from tests.unit.clock import Clock

POLICY = CorrelatorPolicy()
UNHEALTHY = Occurrence("web", "Warning", "Unhealthy", "Liveness probe failed: exit 1", "spec.containers{app}")


class Correlator:
    """One object's state, kept as the recorder keeps it (through JSON), and the clock moved ``step`` per event."""

    def __init__(self, step: float, policy: CorrelatorPolicy = POLICY) -> None:
        self.clock, self.step, self.policy = Clock(1_700_000_000.0), step, policy
        self.state = ObjectState.fresh(policy, self.clock())

    def __call__(self, event: Occurrence) -> Correlated:
        state = ObjectState.from_dict(json.loads(json.dumps(self.state.to_dict())))
        result = correlate(state, event, self.clock(), self.policy)
        self.state = state
        self.clock.advance(self.step)
        return result

    def play(self, events: list[Occurrence]) -> list[Correlated]:
        return [self(event) for event in events]


def similar(count: int) -> list[Occurrence]:
    return [Occurrence("web", "Warning", "BackOff", f"Back-off pulling image {i}") for i in range(count)]


def test_a_single_event_is_created_with_kubelets_name() -> None:
    correlator = Correlator(step=5)
    result = correlator(UNHEALTHY)
    assert result == Correlated(f"web.{int(1_700_000_000 * 1e9):x}", 1, 1_700_000_000.0, UNHEALTHY.message)


def test_the_same_event_just_counts_under_its_first_name() -> None:
    first, second = Correlator(step=5).play([UNHEALTHY, UNHEALTHY])
    assert (second.name, second.count, second.first, second.message) == (first.name, 2, first.first, first.message)


def test_the_same_event_just_counts_even_past_the_aggregation_threshold() -> None:
    results = Correlator(step=30).play([UNHEALTHY] * (POLICY.max_events + 1))
    assert [r.count for r in results] == list(range(1, POLICY.max_events + 2))
    assert {r.name for r in results} == {results[0].name} and {r.message for r in results} == {UNHEALTHY.message}


def test_the_same_event_is_spam_when_it_comes_too_often_and_its_count_goes_on() -> None:
    correlator = Correlator(step=1)
    results = correlator.play([UNHEALTHY] * (POLICY.spam_burst + 2))
    assert [r.skip for r in results] == [False] * POLICY.spam_burst + [True, True]
    correlator.clock.advance(300)  # one token back (1 every 5 minutes)
    after = correlator.play([UNHEALTHY, UNHEALTHY])
    assert not after[0].skip and after[0].count == POLICY.spam_burst + 3 and after[0].name == results[0].name
    assert after[1].skip


def test_the_bucket_is_per_object_whatever_the_reason() -> None:
    correlator = Correlator(step=1)
    correlator.play([Occurrence("web", "Normal", f"Reason{i}", "m") for i in range(POLICY.spam_burst)])
    assert correlator(Occurrence("web", "Normal", "Other", "m")).skip


def test_similar_events_are_combined_from_the_tenth() -> None:
    results = Correlator(step=5).play(similar(POLICY.max_events))
    assert [r.message.startswith(COMBINED_PREFIX) for r in results] == [False] * 9 + [True]
    combined = results[-1]
    assert combined.message == COMBINED_PREFIX + "Back-off pulling image 9" and combined.count == 1
    assert combined.name not in {r.name for r in results[:-1]}


def test_similar_events_many_times_count_the_combined_event() -> None:
    results = Correlator(step=5).play(similar(POLICY.max_events + 5))
    combined = results[POLICY.max_events - 1:]
    assert [r.count for r in combined] == [1, 2, 3, 4, 5, 6]
    assert {r.name for r in combined} == {combined[0].name}
    assert combined[-1].message == COMBINED_PREFIX + "Back-off pulling image 14"


def test_similar_events_further_apart_than_the_interval_are_not_combined() -> None:
    results = Correlator(step=POLICY.max_interval_s + 1).play(similar(POLICY.max_events + 1))
    assert not any(r.message.startswith(COMBINED_PREFIX) for r in results)
    assert [r.count for r in results] == [1] * (POLICY.max_events + 1)


@pytest.mark.parametrize("other", [
    Occurrence("web", "Warning", "Unhealthy", UNHEALTHY.message, "spec.containers{sidecar}"),  # another container
    Occurrence("web", "Normal", "Unhealthy", UNHEALTHY.message, UNHEALTHY.field_path),  # another type
    Occurrence("web", "Warning", "Unhealthy", "Readiness probe failed", UNHEALTHY.field_path),  # another message
])
def test_events_that_differ_are_counted_apart(other: Occurrence) -> None:
    first, second = Correlator(step=5).play([UNHEALTHY, other])
    assert second.count == 1 and second.name != first.name


def test_two_events_at_the_same_instant_get_names_of_their_own() -> None:
    first, second = Correlator(step=0).play([UNHEALTHY, Occurrence("web", "Normal", "Killing", "Stopping app")])
    assert first.name != second.name


def test_an_objects_state_stays_small() -> None:
    policy = CorrelatorPolicy(max_events=1000, max_logged=8)
    correlator = Correlator(step=301, policy=policy)  # a token back each time: nothing skipped
    correlator.play([Occurrence("web", "Normal", "Pulled", f"image {i}") for i in range(50)])
    assert len(correlator.state.logged) == 8
    correlator.clock.advance(policy.idle_s + 1)
    correlator(UNHEALTHY)
    assert len(correlator.state.logged) == 1 and len(correlator.state.aggregates) == 1


@pytest.mark.parametrize("bad", [{"max_events": 0}, {"max_interval_s": 0}, {"spam_burst": 0}, {"spam_qps": 0},
                                 {"max_logged": 0}])  # fmt: skip
def test_a_policy_refuses_values_that_would_stop_every_event(bad: dict) -> None:
    with pytest.raises(ValueError, match="invalid event correlation policy"):
        CorrelatorPolicy(**bad)
