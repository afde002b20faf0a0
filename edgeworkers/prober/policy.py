"""Probe decisions as pure functions over plain data (kubelet's prober worker, without its goroutine): when a probe
is due, and what one run's outcome does to the result given the thresholds. Tested from tables with a fake clock.

Kubernetes' semantics: nothing runs before ``initialDelaySeconds`` after the container started; then one run every
``periodSeconds``; the result flips to failure after ``failureThreshold`` consecutive failures and to success after
``successThreshold`` consecutive successes. Readiness starts as failure (not ready until the first success),
liveness as success, startup as unknown; while a container's startup probe has not succeeded its liveness and
readiness probes do not run, and once it has, it runs no more.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from edgeworkers.k8s.pod import Probe

LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
KINDS = (STARTUP, LIVENESS, READINESS)


class Result(str, enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProbeConfig:
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_probe(cls, probe: Probe) -> ProbeConfig:
        """Kubernetes' defaults for unset (or 0) fields; 0 is "unset" for all but the initial delay."""
        return cls(
            initial_delay_s=float(probe.initial_delay_seconds or 0),
            period_s=float(probe.period_seconds or 10),
            timeout_s=float(probe.timeout_seconds or 1),
            success_threshold=probe.success_threshold or 1,
            failure_threshold=probe.failure_threshold or 3,
        )


def initial_result(kind: str) -> Result:
    return {READINESS: Result.FAILURE, LIVENESS: Result.SUCCESS}.get(kind, Result.UNKNOWN)


@dataclass
class ProbeState:
    """One probe of one container instance (a restarted container gets a fresh state)."""

    kind: str
    result: Result
    successes: int = 0
    failures: int = 0
    next_due: float | None = None  # None: first run at start + initial delay
    running: bool = False
    done: bool = False  # a startup probe that succeeded, or a liveness/startup probe that killed its container

    @classmethod
    def new(cls, kind: str, stored: bool | None = None) -> ProbeState:
        """A probe's state when the prober first sees its container: the initial result, or ``stored``, the result
        the probe results store holds for this container instance (a prober restarted while it ran). So a restart
        neither flaps a ready container nor probes a started one's startup again; a failing probe still turns the
        seeded result after ``failureThreshold`` runs."""
        if stored is None or kind == LIVENESS:
            return cls(kind, initial_result(kind))
        state = cls(kind, Result.SUCCESS if stored else Result.FAILURE)
        state.done = kind == STARTUP and stored
        return state


def due_at(state: ProbeState, config: ProbeConfig, started_at: float) -> float:
    return state.next_due if state.next_due is not None else started_at + config.initial_delay_s


def is_due(state: ProbeState, config: ProbeConfig, started_at: float, now: float, slack_s: float = 0.0) -> bool:
    """Whether a run should start now (never two at once, never after the probe is done).

    ``slack_s``: a run due within this much from now starts now. The manager finds due probes on a tick, so a run
    due just after a tick (its schedule lined up with the ticks, the tick a few milliseconds early) would otherwise
    start a whole tick late; with half a tick of slack it starts at most half a tick early or late, and its next
    runs keep their schedule. Never before the initial delay, though."""
    if state.running or state.done:
        return False
    return now + (slack_s if state.next_due is not None else 0.0) >= due_at(state, config, started_at)


def start_run(state: ProbeState, config: ProbeConfig, started_at: float, now: float) -> float:
    """Mark a run started and schedule the next one a period after this one was due (no drift); a run that was
    more than a period late starts the schedule again from now. Returns how late this run starts (seconds)."""
    due = due_at(state, config, started_at)
    state.running = True
    state.next_due = due + config.period_s if now - due < config.period_s else now + config.period_s
    return max(0.0, now - due)


def record(state: ProbeState, config: ProbeConfig, ok: bool) -> Result | None:
    """Count one run's outcome; return the new result when it changed (else None)."""
    state.running = False
    if ok:
        state.successes, state.failures = state.successes + 1, 0
        flipped = Result.SUCCESS if state.successes >= config.success_threshold else None
    else:
        state.failures, state.successes = state.failures + 1, 0
        flipped = Result.FAILURE if state.failures >= config.failure_threshold else None
    if state.kind == STARTUP and flipped == Result.SUCCESS:
        state.done = True
    if flipped is None or flipped == state.result:
        return None
    state.result = flipped
    return flipped


def kill_failed(state: ProbeState) -> None:
    """The container a failed probe was to kill is still there (its stop failed): probe it again, and let the next
    failed run (its failure count is kept at the threshold) kill it again."""
    state.done = False
    state.result = initial_result(state.kind)


def kills(kind: str, result: Result) -> bool:
    """A liveness or startup probe that turned to failure kills the container (the restart policy then acts)."""
    return kind in (LIVENESS, STARTUP) and result == Result.FAILURE


def gated(kind: str, startup: ProbeState | None) -> bool:
    """Liveness and readiness wait while a startup probe exists and has not succeeded."""
    return kind != STARTUP and startup is not None and startup.result != Result.SUCCESS
