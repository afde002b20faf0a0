"""The pure restart, back-off and pod-action rules, from tables."""

from __future__ import annotations

import pytest

from edgeworkers.pods.backoff import BackoffEntry, MemoryBackoffStore
from edgeworkers.pods.convert import container_hash, sandbox_hash
from edgeworkers.pods.policy import (
    BackoffPolicy,
    backoff_delay,
    backoff_remaining,
    compute_pod_actions,
    go_duration,
    latest_instances,
    should_restart,
)
from edgeworkers.runtime.types import Container, ContainerState
from tests.unit.pods.podkit import CREATED, EXITED, RUNNING, T0, container, ctr, make_pod

POLICY = BackoffPolicy(initial_s=10, max_s=300, reset_s=600)


@pytest.mark.parametrize(
    ("policy", "exit_code", "expected"),
    [
        ("Always", 0, True), ("Always", 1, True), ("Always", 137, True),
        ("OnFailure", 0, False), ("OnFailure", 1, True), ("OnFailure", 137, True),
        ("Never", 0, False), ("Never", 1, False),
    ],
)  # fmt: skip
def test_should_restart(policy: str, exit_code: int, expected: bool) -> None:
    assert should_restart(policy, exit_code) is expected


@pytest.mark.parametrize(
    ("previous", "ran_for", "expected"),
    [
        (None, 0, 10),  # first failure
        (10, 5, 20),
        (20, 5, 40),
        (160, 5, 300),  # capped
        (300, 5, 300),
        (300, 599, 300),
        (300, 600, 10),  # ran ten minutes: reset
        (None, 3600, 10),
    ],
)
def test_backoff_delay(previous: float | None, ran_for: float, expected: float) -> None:
    assert backoff_delay(previous, ran_for, POLICY) == expected


@pytest.mark.parametrize(
    ("entry", "failed_at", "ran_for", "now", "expected"),
    [
        (None, T0, 1, T0, 0),  # never restarted before: now
        (BackoffEntry(10, T0 - 50), T0, 1, T0, 10),
        (BackoffEntry(10, T0 - 50), T0, 1, T0 + 4, 6),
        (BackoffEntry(10, T0 - 50), T0, 1, T0 + 10, 0),
        (BackoffEntry(300, T0 - 50), T0, 1, T0 + 100, 200),
        (BackoffEntry(300, T0 - 50), T0, 600, T0, 0),  # a long run forgives
    ],
)
def test_backoff_remaining(
    entry: BackoffEntry | None, failed_at: float, ran_for: float, now: float, expected: float
) -> None:
    assert backoff_remaining(entry, failed_at, ran_for, now, POLICY) == pytest.approx(expected)


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


POD = make_pod(containers=[container("app"), container("side")])
APP_HASH = container_hash(POD.spec.containers[0])
SIDE_HASH = container_hash(POD.spec.containers[1])
SANDBOX = ctr("POD", spec_hash=sandbox_hash(POD))


def app(state: ContainerState = RUNNING, **kw) -> Container:
    return ctr("app", state, spec_hash=kw.pop("spec_hash", APP_HASH), **kw)


def side(state: ContainerState = RUNNING, **kw) -> Container:
    return ctr("side", state, spec_hash=kw.pop("spec_hash", SIDE_HASH), **kw)


def plan(containers: list[Container], pod=POD, now: float = T0 + 5, store: MemoryBackoffStore | None = None):
    return compute_pod_actions(pod, containers, now, store or MemoryBackoffStore(), POLICY)


def started(actions) -> list[tuple[str, int]]:
    return [(s.name, s.restart_count) for s in actions.start]


def test_a_new_pod_creates_its_sandbox_and_every_container() -> None:
    actions = plan([])
    assert actions.create_sandbox and started(actions) == [("app", 0), ("side", 0)]
    assert actions.stop == actions.remove == [] and actions.requeue_after is None


def test_a_running_pod_needs_nothing() -> None:
    actions = plan([SANDBOX, app(), side()])
    assert not actions.create_sandbox and actions.start == actions.stop == actions.remove == []


@pytest.mark.parametrize(
    ("sandbox", "why"),
    [(ctr("POD", EXITED, spec_hash=sandbox_hash(POD), exit_code=137), "dead"),
     (ctr("POD", spec_hash="other"), "changed (hostNetwork)")],
)  # fmt: skip
def test_a_dead_or_changed_sandbox_restarts_the_pod(sandbox: Container, why: str) -> None:
    running = app()
    actions = plan([sandbox, running, side(EXITED, exit_code=0)])
    assert actions.create_sandbox, why
    assert actions.stop == [running] and actions.remove == [sandbox]
    assert started(actions) == [("app", 1), ("side", 1)]


def test_containers_of_another_uid_are_removed_and_the_pod_started_over() -> None:
    old = [ctr("POD", uid="uid-0", spec_hash=sandbox_hash(POD)), ctr("app", uid="uid-0", spec_hash=APP_HASH)]
    actions = plan(old)
    assert actions.remove == old and actions.create_sandbox
    assert started(actions) == [("app", 0), ("side", 0)]


def test_a_changed_spec_stops_and_replaces_only_that_container() -> None:
    stale = app(spec_hash="old")
    actions = plan([SANDBOX, stale, side()])
    assert actions.stop == [stale] and started(actions) == [("app", 1)]


def test_a_created_never_started_container_is_started_if_its_spec_matches() -> None:
    created = app(CREATED, restarts=2)
    actions = plan([SANDBOX, created, side()])
    assert [(s.name, s.restart_count, s.reuse) for s in actions.start] == [("app", 2, created)]
    assert actions.remove == []


def test_a_created_never_started_container_of_an_old_spec_is_replaced() -> None:
    created = app(CREATED, restarts=2, spec_hash="old")
    actions = plan([SANDBOX, created, side()])
    assert actions.remove == [created] and started(actions) == [("app", 2)]
    assert actions.start[0].reuse is None


def test_unknown_containers_and_older_instances_are_removed() -> None:
    stray = ctr("gone")
    oldest = app(EXITED, restarts=0, exit_code=1, created=0)
    older = app(EXITED, restarts=1, exit_code=1, created=10)
    current = app(restarts=2, created=20)
    duplicate = side(restarts=0, created=0)
    actions = plan([SANDBOX, stray, oldest, older, current, duplicate, side(restarts=1, created=10)])
    assert sorted(c.id.id for c in actions.remove) == sorted(c.id.id for c in (stray, oldest, duplicate))


@pytest.mark.parametrize(
    ("restart", "exit_code", "expected"),
    [("Always", 0, [("app", 1)]), ("Always", 2, [("app", 1)]), ("OnFailure", 2, [("app", 1)]),
     ("OnFailure", 0, []), ("Never", 2, [])],
)  # fmt: skip
def test_exited_containers_restart_per_policy_the_first_time_at_once(
    restart: str, exit_code: int, expected: list
) -> None:
    pod = make_pod(containers=[container("app")], restart=restart)
    actions = plan([ctr("POD", spec_hash=sandbox_hash(pod)), app(EXITED, exit_code=exit_code)], pod=pod)
    assert started(actions) == expected
    if expected:
        assert actions.backoff["app"].delay == 10
    else:
        assert [c.name for c in actions.stop] == ["POD"]  # the pod is done


def test_a_container_in_back_off_waits_with_crash_loop_back_off() -> None:
    store = MemoryBackoffStore()
    store.put("uid-1", "app", BackoffEntry(delay=20, since=T0 - 100))
    crashed = app(EXITED, restarts=3, exit_code=1, created=-10, started=-10, finished=0)
    actions = plan([SANDBOX, crashed, side()], now=T0 + 5, store=store)
    assert actions.start == []
    reason, message = actions.waiting["app"]
    assert reason == "CrashLoopBackOff"
    assert message == "back-off 20s restarting failed container=app pod=web_default(uid-1)"
    assert actions.requeue_after == pytest.approx(15)
    later = plan([SANDBOX, crashed, side()], now=T0 + 20, store=store)
    assert started(later) == [("app", 4)] and later.backoff["app"] == BackoffEntry(40, T0)


def test_init_containers_run_in_order_then_the_app_containers() -> None:
    pod = make_pod(init=[container("i1"), container("i2")], containers=[container("app")])
    sandbox = ctr("POD", spec_hash=sandbox_hash(pod))
    i1_running = ctr("i1", RUNNING, init=True, created=1)
    i1_done = ctr("i1", EXITED, init=True, exit_code=0, created=1)
    i2_done = ctr("i2", EXITED, init=True, exit_code=0, created=2)
    assert started(plan([sandbox], pod=pod)) == [("i1", 0)]
    waiting = plan([sandbox, i1_running], pod=pod)
    assert waiting.start == [] and waiting.requeue_after == 1.0
    assert started(plan([sandbox, i1_done], pod=pod)) == [("i2", 0)]
    done = [sandbox, i1_done, i2_done]
    assert started(plan(done, pod=pod)) == [("app", 0)]


def test_a_new_sandbox_runs_the_init_containers_again() -> None:
    pod = make_pod(init=[container("i1")], containers=[container("app")])
    old_init = ctr(
        "i1", EXITED, init=True, exit_code=0, created=1, spec_hash=container_hash(pod.spec.init_containers[0])
    )
    new_sandbox = ctr("POD", spec_hash=sandbox_hash(pod), created=100)
    assert started(plan([new_sandbox, old_init], pod=pod, now=T0 + 200)) == [("i1", 1)]


def test_a_failed_init_container_under_never_stops_the_pod() -> None:
    pod = make_pod(init=[container("i1")], containers=[container("app")], restart="Never")
    sandbox = ctr("POD", spec_hash=sandbox_hash(pod))
    actions = plan([sandbox, ctr("i1", EXITED, init=True, exit_code=1)], pod=pod)
    assert actions.start == [] and actions.stop == [sandbox]
    dead = ctr("POD", EXITED, spec_hash=sandbox_hash(pod), exit_code=137)
    after = plan([dead, ctr("i1", EXITED, init=True, exit_code=1)], pod=pod)
    assert not after.create_sandbox and after.start == []


@pytest.mark.parametrize(
    ("restart", "app_exit", "recreate"),
    [("Always", 0, True), ("OnFailure", 1, True), ("OnFailure", 0, False), ("Never", 1, False)],
)
def test_a_dead_sandbox_of_a_pod_that_ran_is_recreated_per_restart_policy(
    restart: str, app_exit: int, recreate: bool
) -> None:
    pod = make_pod(containers=[container("app")], restart=restart)
    dead = ctr("POD", EXITED, spec_hash=sandbox_hash(pod), exit_code=0)
    actions = plan([dead, app(EXITED, exit_code=app_exit)], pod=pod)
    assert actions.create_sandbox is recreate


def test_latest_instances_keep_one_dead_instance() -> None:
    a0, a1, a2 = (app(EXITED, restarts=n, exit_code=1, created=n) for n in range(3))
    latest, extra = latest_instances([a0, a2, a1])
    assert latest == {"app": a2} and extra == [a1, a0]
    running = app(restarts=3, created=3)
    latest, extra = latest_instances([a0, a1, a2, running])
    assert latest == {"app": running} and extra == [a1, a0]


def test_a_changed_sandbox_of_a_never_pod_that_ran_kills_it_for_good() -> None:
    pod = make_pod(containers=[container("app")], restart="Never", hostNetwork=True)
    old_sandbox, running = ctr("POD", spec_hash=sandbox_hash(make_pod())), app()
    actions = plan([old_sandbox, running], pod=pod)
    assert not actions.create_sandbox and actions.start == []
    assert actions.stop == [running, old_sandbox]
