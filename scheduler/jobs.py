"""The job table's machinery: a ``Job`` (id, function, interval, misfire grace), the guard every job runs in, and
the one place jobs are added to APScheduler, each with ``max_instances=1`` and ``coalesce=True``.

A job that is still running when it is due again is skipped (``max_instances=1``), and runs missed while the
process was busy collapse into one (``coalesce``); a run later than its misfire grace is dropped, the next one
comes an interval later. A failing run is logged in one line (never a traceback every second) and counted; each
job's last success time is kept, exported (``edgeworkers_job_last_success_timestamp_seconds``) and handed to
``on_success`` (the scheduler writes it to Redis).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.base import BaseScheduler

from edgeworkers import metrics
from edgeworkers.metamanager.memory import explain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[], Any]
    interval_s: float
    misfire_grace_s: float | None = None  # None: one interval
    jitter_s: float | None = None  # each run up to this much later (APScheduler's jitter), so nodes and jobs spread
    at_start: bool = True  # False: the first run comes one interval after the start

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"job {self.id}: the interval must be positive, not {self.interval_s}")


class Guarded:
    """Run a job's function; a failure is logged in one line and counted, a success recorded."""

    def __init__(
        self,
        job: Job,
        clock: Callable[[], float] = time.time,
        on_success: Callable[[str, float], None] | None = None,
    ) -> None:
        self.job = job
        self._clock = clock
        self._on_success = on_success
        self.last_success: float | None = None
        self.failures = 0

    def __call__(self) -> bool:
        try:
            self.job.func()
        except Exception as exc:  # noqa: BLE001 - a job must never take the scheduler down
            self.failures += 1
            metrics.JOB_FAILURES.labels(self.job.id).inc()
            log.warning("job %s failed: %s", self.job.id, explain(exc))
            return False
        self.last_success = self._clock()
        metrics.JOB_LAST_SUCCESS.labels(self.job.id).set(self.last_success)
        if self._on_success is not None:
            try:
                self._on_success(self.job.id, self.last_success)
            except Exception as exc:  # noqa: BLE001
                log.warning("job %s: cannot record its success: %s", self.job.id, explain(exc))
        return True


def add_jobs(
    scheduler: BaseScheduler,
    jobs: list[Job],
    clock: Callable[[], float] = time.time,
    on_success: Callable[[str, float], None] | None = None,
) -> dict[str, Guarded]:
    """Add every job of the table to ``scheduler``, guarded, first run at once; return the guards by job id."""
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate job ids in {ids}")
    guards = {}
    for job in jobs:
        guard = guards[job.id] = Guarded(job, clock, on_success)
        scheduler.add_job(
            guard,
            "interval",
            seconds=job.interval_s,
            id=job.id,
            name=job.id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, round(job.misfire_grace_s or job.interval_s)),
            jitter=job.jitter_s,
            next_run_time=datetime.now(UTC) + timedelta(seconds=0 if job.at_start else job.interval_s),
        )
    return guards


def job_options(scheduler: BaseScheduler) -> dict[str, dict[str, Any]]:
    """Each job's scheduling options as APScheduler holds them (for tests and `scheduler --list`)."""
    return {
        job.id: {
            "interval_s": job.trigger.interval.total_seconds(),
            "max_instances": job.max_instances,
            "coalesce": job.coalesce,
            "misfire_grace_time": job.misfire_grace_time,
            "jitter": job.trigger.jitter,
        }
        for job in scheduler.get_jobs()
    }
