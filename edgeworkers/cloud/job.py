"""The Job controller (batch/v1) and its TTL-after-finished half, as kube-controller-manager's ``job`` and
``ttlafterfinished`` controllers; the defaulting and validation of jobs (kube's ``jobStrategy``).

Pods are counted from the phases their nodes report. Kube tracks finished pods with a finalizer and moves them through
``status.uncountedTerminatedPods`` so a finished pod deleted early still counts; here there are no finalizers:
``uncountedTerminatedPods`` stays ``{}`` and the finished pods in the store are counted at each sync (the controller
deletes none before the Job finishes), so a finished pod that a user deletes while its Job runs drops out of the count.

As in kube 1.32 (JobPodReplacementPolicy on), a Job that meets its end first gets the interim ``SuccessCriteriaMet``
or ``FailureTarget`` condition; its active pods are deleted, and once none is left terminating the terminal
``Complete`` or ``Failed`` condition follows with the same reason.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from edgeworkers.cloud import ownership, workloads
from edgeworkers.cloud.controller import Controller, Key, TokenBucket
from edgeworkers.cloud.recorder import event_on, record
from edgeworkers.cloud.selectors import from_label_selector
from edgeworkers.cloud.store import Clock, Event, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings
from edgeworkers.k8s import pod as pod_model
from edgeworkers.k8s.metavalidation import nonnegative, validate_labels
from edgeworkers.k8s.podvalidation import validate_pod_spec
from edgeworkers.k8s.printers import parse_time
from edgeworkers.k8s.status import FieldError, invalid_value, not_supported, required
from edgeworkers.k8s.timefmt import format_time

COMPONENT = "job-controller"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
LEGACY_CONTROLLER_UID, LEGACY_JOB_NAME = "controller-uid", "job-name"

# Kube's pod failure back-off between retries (DefaultJobPodFailureBackOff, MaxJobPodFailureBackOff).
POD_BACKOFF_BASE_S, POD_BACKOFF_MAX_S = 10.0, 360.0

COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
FINISHED = ("Complete", "Failed")
INTERIM = {"SuccessCriteriaMet": "Complete", "FailureTarget": "Failed"}
COMPLETION_MODES = ("NonIndexed", "Indexed")
RESTART_POLICIES = ("OnFailure", "Never")


def pod_backoff_s(failures: int) -> float:
    """The wait before re-creating a pod after ``failures`` consecutive failures (10 s doubling, capped at 6 min)."""
    return min(POD_BACKOFF_BASE_S * 2 ** (failures - 1), POD_BACKOFF_MAX_S) if failures > 0 else 0.0


# -- defaulting and validation ----------------------------------------------------------------------------------

def default_job(obj: dict) -> dict:
    """SetDefaults_Job plus jobStrategy's generated selector and template labels (``manualSelector`` not true)."""
    job = workloads.copy(obj)
    spec = job.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    template = spec.get("template")
    if not isinstance(template, dict):
        return job
    template["spec"] = pod_model.default_pod({"spec": template.get("spec") or {}})["spec"]
    if not spec.get("manualSelector") and spec.get("selector") is None:
        meta = job.setdefault("metadata", {})
        uid = meta.setdefault("uid", str(uuid.uuid4()))  # the store keeps it (kube fills it before PrepareForCreate)
        labels = (template.setdefault("metadata", {}).get("labels") or {})
        template["metadata"]["labels"] = {**labels, CONTROLLER_UID: uid, JOB_NAME: meta.get("name", ""),
                                          LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: meta.get("name", "")}
        spec["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}
    return job


def _under_template(errors: list[FieldError]) -> list[FieldError]:
    return [e._replace(field=f"spec.template.{e.field}") for e in errors]


def validate_job(job: dict, old: dict | None) -> list[FieldError]:
    """ValidateJob (create) and ValidateJobUpdate: the spec's numbers, selector, template and immutable fields."""
    spec = job.get("spec") or {}
    errors: list[FieldError] = []
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        errors += nonnegative(f"spec.{key}", spec.get(key))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        errors.append(invalid_value("spec.activeDeadlineSeconds", deadline, "must be greater than 0"))
    mode = spec.get("completionMode")
    if mode not in COMPLETION_MODES:
        errors.append(not_supported("spec.completionMode", mode, COMPLETION_MODES))
    elif mode == "Indexed" and spec.get("completions") is None:
        errors.append(required("spec.completions", "when completion mode is Indexed"))
    template = spec.get("template")
    if not isinstance(template, dict) or not template.get("spec"):
        return [*errors, required("spec.template", "")]
    labels = (template.get("metadata") or {}).get("labels") or {}
    errors += validate_labels(labels, "spec.template.metadata.labels")
    try:
        selector = from_label_selector(spec.get("selector"))
    except ValueError as e:
        selector = None
        errors.append(invalid_value("spec.selector", spec.get("selector"), str(e)))
    if spec.get("selector") is None:
        errors.append(required("spec.selector", ""))
    elif selector is not None and (selector.empty() or not selector.matches(labels)):
        errors.append(invalid_value("spec.template.metadata.labels", labels,
                                    "`selector` does not match template `labels`"))
    errors += _under_template(validate_pod_spec(template["spec"]))
    restart = template["spec"].get("restartPolicy")
    if restart not in RESTART_POLICIES:
        errors.append(not_supported("spec.template.spec.restartPolicy", restart, RESTART_POLICIES))
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in ("selector", "template", "completionMode"):
            if spec.get(key) != old_spec.get(key):
                errors.append(invalid_value(f"spec.{key}", spec.get(key), "field is immutable"))
    return errors


# -- the controller ---------------------------------------------------------------------------------------------

def _condition(conditions: list[dict], type_: str) -> dict | None:
    return next((c for c in conditions if c.get("type") == type_ and c.get("status") == "True"), None)


def finished_condition(job: dict) -> dict | None:
    """The Job's ``Complete`` or ``Failed`` condition when it has finished."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return next((c for type_ in FINISHED if (c := _condition(conditions, type_))), None)


def _finished_at(pod: dict) -> dt.datetime | None:
    """When a terminated pod's last container stopped, as its node reported it."""
    times = [parse_time(((s.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for s in (pod.get("status") or {}).get("containerStatuses") or []]
    return max((t for t in times if t is not None), default=None)


def _restarts(pod: dict) -> int:
    status = pod.get("status") or {}
    return sum(s.get("restartCount", 0) for key in ("initContainerStatuses", "containerStatuses")
               for s in status.get(key) or [])


def _index(pod: dict) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
    return int(value) if value is not None and value.isdigit() else None


def _ranges(indexes: Iterable[int]) -> str:
    """``0-2,4``: kube's ``completedIndexes`` notation."""
    out: list[str] = []
    for i in sorted(set(indexes)):
        if out and out[-1].split("-")[-1] == str(i - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


class JobController(Controller):
    name = "job"
    resource = "jobs"

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == "pods":
            ref = workloads.controller_of(event.object)
            if ref is not None and ref.get("kind") == "Job" and ref.get("apiVersion") == "batch/v1":
                yield event.object["metadata"]["namespace"], ref["name"]
            return
        yield from super().keys_for(event)

    def _event(self, job: dict, type_: str, reason: str, message: str) -> None:
        record(self.store, self.hub, event_on(job, "Job", "batch/v1", type_, reason, message, COMPONENT,
                                              self.clock()))

    def sync(self, key: Key) -> float | None:
        job = self.store.find("jobs", *key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        pods = [p for p in self.store.list("pods", key[0]) if workloads.controlled_by(p, job)]
        if finished_condition(job) is not None:
            active = [p for p in pods if workloads.is_active(p)]
            allowed, paced = self.pace(job, len(active))
            for pod in active[:allowed]:
                workloads.delete_pod(self.store, self.hub, pod)
            return min((w for w in (paced, self._expire(job)) if w is not None), default=None)
        return self._sync_running(job, pods)

    def _expire(self, job: dict) -> float | None:
        """The TTL-after-finished controller: delete a finished Job (its pods with it) once its TTL has passed."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        condition = finished_condition(job)
        if ttl is None or condition is None:
            return None
        finished = parse_time(job["status"].get("completionTime") or condition.get("lastTransitionTime"))
        left = ttl - ((self.clock() - finished).total_seconds() if finished else 0.0)
        if left > 0:
            return left
        for event in ownership.delete(self.store, "jobs", job, None, "Background")[1]:
            self.hub.publish(event)
        return None

    def _sync_running(self, job: dict, pods: list[dict]) -> float | None:
        spec, now = job["spec"], self.clock()
        status = workloads.copy(job.get("status") or {})
        conditions: list[dict] = status.setdefault("conditions", [])
        stamp = format_time(now)
        active = [p for p in pods if workloads.is_active(p)]
        succeeded = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        done_indexes = {i for p in succeeded if (i := _index(p)) is not None and i < (completions or 0)}
        again: list[float] = []

        interim = next((c for c in conditions if c.get("type") in INTERIM and c.get("status") == "True"), None)
        suspended = bool(spec.get("suspend"))
        if interim is None:
            self._suspension(job, conditions, status, suspended, stamp)
            start = parse_time(status.get("startTime"))
            deadline = spec.get("activeDeadlineSeconds")
            restarts = sum(_restarts(p) for p in active)
            limit = spec.get("backoffLimit", 6)
            if indexed:
                complete = len(done_indexes) >= (completions or 0)
            elif completions is None:
                complete = bool(succeeded) and not active
            else:
                complete = len(succeeded) >= completions
            failure = None
            if len(failed) > limit or (spec["template"]["spec"].get("restartPolicy") == "OnFailure"
                                       and (restarts > 0 if limit == 0 else restarts >= limit)):
                failure = BACKOFF_LIMIT_EXCEEDED
            elif deadline is not None and start is not None and not suspended:
                left = deadline - (now - start).total_seconds()
                if left <= 0:
                    failure = DEADLINE_EXCEEDED
                else:
                    again.append(left)
            if complete or failure:
                type_, (reason, message) = ("SuccessCriteriaMet", COMPLETIONS_REACHED) if complete and not failure \
                    else ("FailureTarget", failure)
                interim = {"type": type_, "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp,
                           "reason": reason, "message": message}
                conditions.append(interim)
            elif not suspended:
                again.append(self._create(job, active, succeeded, failed, done_indexes, now))
        if interim is not None or suspended:
            allowed, paced = self.pace(job, len(active))
            again.append(paced or 0.0)
            for pod in active[:allowed]:
                workloads.delete_pod(self.store, self.hub, pod)
                self._event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        pods = [p for p in self.store.list("pods", job["metadata"]["namespace"]) if workloads.controlled_by(p, job)]
        active = [p for p in pods if workloads.is_active(p)]
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")
                       and (p.get("status") or {}).get("phase") not in workloads.TERMINAL]
        if interim is not None and not active and not terminating:
            self._finish(job, interim, conditions, status, stamp)
        status.update({"active": len(active), "ready": sum(map(workloads.is_ready, active)),
                       "succeeded": len(succeeded), "failed": len(failed), "terminating": len(terminating),
                       "uncountedTerminatedPods": {}})
        for counter in ("active", "succeeded", "failed"):  # omitempty int32s, as kube serializes them
            if not status[counter]:
                del status[counter]
        if indexed:
            status["completedIndexes"] = _ranges(done_indexes)
        if not conditions:
            del status["conditions"]
        if status != job.get("status"):
            workloads.update(self.store, self.hub, "jobs", {**job, "status": status})
        positive = [s for s in again if s > 0]
        return min(positive) if positive else None

    def _suspension(self, job: dict, conditions: list[dict], status: dict, suspended: bool, stamp: str) -> None:
        """The ``Suspended`` condition and its events; a Job started or resumed gets a new ``startTime``."""
        current = next((c for c in conditions if c.get("type") == "Suspended"), None)
        was = current is not None and current.get("status") == "True"
        if suspended and not was:
            new = {"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"}
            self._event(job, "Normal", "Suspended", "Job suspended")
        elif not suspended and was:
            new = {"type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed"}
            self._event(job, "Normal", "Resumed", "Job resumed")
            status["startTime"] = stamp
        else:
            new = None
        if new is not None:
            new.update(lastProbeTime=stamp, lastTransitionTime=stamp)
            conditions[:] = [c for c in conditions if c.get("type") != "Suspended"] + [new]
        if not suspended and not status.get("startTime"):
            status["startTime"] = stamp

    def _create(self, job: dict, active: list[dict], succeeded: list[dict], failed: list[dict],
                done_indexes: set[int], now: dt.datetime) -> float:
        """Create the pods the Job lacks, after the back-off its recent failures earn and as many as the pace allows;
        when to look again (0: no)."""
        spec = job["spec"]
        completions, parallelism = spec.get("completions"), spec.get("parallelism", 1)
        if completions is None:
            want = 0 if succeeded else parallelism
        else:
            want = min(completions - (len(done_indexes) if spec.get("completionMode") == "Indexed"
                                      else len(succeeded)), parallelism)
        missing = max(want, 0) - len(active)
        if missing <= 0:
            return 0.0
        last_success = max((t for p in succeeded if (t := _finished_at(p))), default=None)
        recent = [t or now for p in failed if (t := _finished_at(p)) is None or last_success is None
                  or t > last_success]
        if recent:
            left = pod_backoff_s(len(recent)) - (now - max(recent)).total_seconds()
            if left > 0:
                return left
        name = job["metadata"]["name"]
        busy = {i for p in active if (i := _index(p)) is not None} | done_indexes
        free = (i for i in range(completions or 0) if i not in busy)
        allowed, paced = self.pace(job, missing)
        for _ in range(allowed):
            if spec.get("completionMode") == "Indexed":
                index = next(free, None)
                if index is None:
                    break
                pod = workloads.pod_from_template("jobs", job, spec["template"], f"{name}-{index}-",
                                                  labels={COMPLETION_INDEX: str(index)})
                pod["metadata"].setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
                pod["spec"].setdefault("hostname", f"{name}-{index}")
            else:
                pod = workloads.pod_from_template("jobs", job, spec["template"], f"{name}-")
            created = workloads.create_pod(self.store, self.hub, pod)
            self._event(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return paced or 0.0

    def _finish(self, job: dict, interim: dict, conditions: list[dict], status: dict, stamp: str) -> None:
        """The terminal condition after the interim one, once no pod is left terminating; its event."""
        type_ = INTERIM[interim["type"]]
        conditions.append({"type": type_, "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp,
                           "reason": interim["reason"], "message": interim["message"]})
        if type_ == "Complete":
            status["completionTime"] = stamp
            self._event(job, "Normal", "Completed", "Job completed")
        else:
            self._event(job, "Warning", interim["reason"], interim["message"])


def make_controller(store: Store, hub: Hub, clock: Clock, _settings: Settings, limiter: TokenBucket) -> JobController:
    return JobController(store, hub, clock, limiter=limiter)
