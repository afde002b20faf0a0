"""Probe thresholds, timing and gating from tables (pure functions, a fake clock as plain numbers)."""
from __future__ import annotations

import pytest

from edgeworkers.k8s.pod import Probe
from edgeworkers.prober.policy import (
    LIVENESS,
    READINESS,
    STARTUP,
    ProbeConfig,
    ProbeState,
    Result,
    gated,
    initial_result,
    is_due,
    kill_failed,
    kills,
    record,
    start_run,
)

S, F, U = Result.SUCCESS, Result.FAILURE, Result.UNKNOWN


def test_kubernetes_defaults() -> None:
    assert ProbeConfig.from_probe(Probe.model_validate({"exec": {"command": ["true"]}})) == ProbeConfig(0, 10, 1, 1, 3)
    zeros = {"periodSeconds": 0, "timeoutSeconds": 0, "successThreshold": 0, "failureThreshold": 0}
    assert ProbeConfig.from_probe(Probe.model_validate(zeros)) == ProbeConfig(0, 10, 1, 1, 3)


@pytest.mark.parametrize(("kind", "result"), [(READINESS, F), (LIVENESS, S), (STARTUP, U)])
def test_initial_results(kind, result) -> None:
    assert initial_result(kind) == result  # readiness: not ready until the first success


@pytest.mark.parametrize(
    ("kind", "success_threshold", "failure_threshold", "outcomes", "results", "final"),
    [
        # readiness: ready at the first success; back to failure after 3 consecutive failures
        (READINESS, 1, 3, [True], [S], S),
        (READINESS, 1, 3, [True, False, False], [S, None, None], S),
        (READINESS, 1, 3, [True, False, False, False], [S, None, None, F], F),
        (READINESS, 1, 3, [True, False, False, True, False, False], [S, None, None, None, None, None], S),
        (READINESS, 2, 1, [True, True, False, True, True], [None, S, F, None, S], S),
        (READINESS, 1, 3, [False, False, False], [None, None, None], F),  # already failure: no change
        # liveness starts as success: only failures change it
        (LIVENESS, 1, 3, [False, False, False], [None, None, F], F),
        (LIVENESS, 1, 1, [True, False], [None, F], F),
        (LIVENESS, 1, 3, [False, False, True, False, False], [None] * 5, S),
        # startup: unknown until success or failure threshold
        (STARTUP, 1, 3, [False, True], [None, S], S),
        (STARTUP, 1, 2, [False, False], [None, F], F),
    ],
)
def test_thresholds(kind, success_threshold, failure_threshold, outcomes, results, final) -> None:
    config = ProbeConfig(success_threshold=success_threshold, failure_threshold=failure_threshold)
    state = ProbeState.new(kind)
    assert [record(state, config, ok) for ok in outcomes] == results
    assert state.result == final


def test_a_startup_probe_that_succeeded_runs_no_more() -> None:
    state = ProbeState.new(STARTUP)
    record(state, ProbeConfig(), True)
    assert state.done and not is_due(state, ProbeConfig(), 0.0, 1e9)


@pytest.mark.parametrize(
    ("initial_delay", "period", "runs_at", "now", "due"),
    [
        (0, 10, [], 100.0, True),  # first run at the start
        (5, 10, [], 104.9, False),  # initial delay
        (5, 10, [], 105.0, True),
        (0, 10, [100.0], 109.9, False),
        (0, 10, [100.0], 110.0, True),
        (0, 1, [100.0, 101.0], 101.5, False),
    ],
)
def test_when_a_probe_is_due(initial_delay, period, runs_at, now, due) -> None:
    config = ProbeConfig(initial_delay_s=initial_delay, period_s=period)
    state = ProbeState.new(READINESS)
    for moment in runs_at:
        start_run(state, config, 100.0, moment)
        record(state, config, True)
    assert is_due(state, config, 100.0, now) is due


@pytest.mark.parametrize(
    ("runs_at", "now", "due"),
    [
        ([], 104.6, False),  # the initial delay holds, slack or not
        ([105.0], 105.6, True),  # due at 106.0: within half a tick of this one
        ([105.0], 105.4, False),  # the next tick is nearer
        ([105.0, 105.6], 106.4, False),  # started early: the schedule holds (next due 107.0)
        ([105.0, 105.6], 106.5, True),
    ],
)
def test_a_run_due_within_the_slack_starts_on_this_tick(runs_at, now, due) -> None:
    config = ProbeConfig(initial_delay_s=5, period_s=1)
    state = ProbeState.new(READINESS)
    for moment in runs_at:
        start_run(state, config, 100.0, moment)
        record(state, config, True)
    assert is_due(state, config, 100.0, now, slack_s=0.5) is due


def test_runs_keep_their_schedule_and_a_run_in_flight_is_not_doubled() -> None:
    config = ProbeConfig(period_s=1)
    state = ProbeState.new(LIVENESS)
    assert start_run(state, config, 100.0, 100.3) == pytest.approx(0.3)  # late by 0.3 s
    assert not is_due(state, config, 100.0, 105.0)  # still running (a hanging probe): not started twice
    record(state, config, False)
    assert state.next_due == 101.0  # no drift: due a period after it was due
    assert start_run(state, config, 100.0, 105.0) == pytest.approx(4.0)
    assert state.next_due == 106.0  # more than a period late: the schedule restarts from now


@pytest.mark.parametrize(
    ("kind", "startup", "is_gated"),
    [
        (LIVENESS, None, False),
        (READINESS, U, True),
        (LIVENESS, F, True),
        (READINESS, S, False),
        (STARTUP, U, False),
    ],
)
def test_a_startup_probe_holds_the_others(kind, startup, is_gated) -> None:
    state = None if startup is None else ProbeState(STARTUP, startup)
    assert gated(kind, state) is is_gated


@pytest.mark.parametrize(
    ("kind", "result", "kill"),
    [(LIVENESS, F, True), (STARTUP, F, True), (READINESS, F, False), (LIVENESS, S, False)],
)
def test_what_kills(kind, result, kill) -> None:
    assert kills(kind, result) is kill


@pytest.mark.parametrize(
    ("kind", "stored", "result", "done"),
    [
        (READINESS, None, F, False), (READINESS, True, S, False), (READINESS, False, F, False),
        (STARTUP, None, U, False), (STARTUP, True, S, True), (STARTUP, False, F, False),
        (LIVENESS, None, S, False), (LIVENESS, False, S, False),  # liveness is never stored
    ],
)  # fmt: skip
def test_a_state_is_seeded_from_the_stored_result(kind: str, stored: bool | None, result: Result, done: bool) -> None:
    state = ProbeState.new(kind, stored)
    assert (state.result, state.done) == (result, done)


def test_after_a_failed_kill_the_next_failed_run_kills_again() -> None:
    config = ProbeConfig(failure_threshold=3)
    state = ProbeState.new(LIVENESS)
    assert [record(state, config, False) for _ in range(3)] == [None, None, F]
    state.done = True  # the kill began
    kill_failed(state)
    assert not state.done and state.result == S
    assert record(state, config, False) == F and kills(LIVENESS, F)
