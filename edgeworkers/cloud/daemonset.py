"""The DaemonSet controller, as kube-controller-manager's (``pkg/controller/daemon``): one pod of each DaemonSet on
every node that should run it, kept through node joins, relabels and taints, rolled to a new template with
``RollingUpdate`` (``maxUnavailable``, ``maxSurge``) or on deletion (``OnDelete``), with ControllerRevisions as the
history ``kubectl rollout history|undo ds/x`` reads and patches.

A node should run the pod when the template's ``nodeSelector`` and required node affinity match it and the pod,
with the tolerations kube adds to every daemon pod (``daemon_tolerations``), tolerates its ``NoSchedule`` and
``NoExecute`` taints; a pod already there keeps running as long as it tolerates the ``NoExecute`` ones. A silent edge
node (``Ready=Unknown``) carries only the ``unreachable:NoSchedule`` taint here (this cloud never adds the
``NoExecute`` one): its pod is kept and counted as misscheduled, and no second one is made. Pods reach their node
through the binder, pinned by a required node affinity on ``metadata.name`` as kube's controller pins them.

The defaulting and validation of the kind (the API server's ``SetDefaults_DaemonSet`` and ``ValidateDaemonSet``)
live here too; ``kinds.py`` registers them.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from edgeworkers.cloud import workloads
from edgeworkers.cloud.controller import Controller, Key, TokenBucket
from edgeworkers.cloud.placement import matches_node
from edgeworkers.cloud.recorder import event_on, record
from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.cloud.selectors import from_label_selector
from edgeworkers.cloud.store import DELETED, MODIFIED, Clock, Event, Store
from edgeworkers.cloud.taints import CONDITION_TAINTS, UNSCHEDULABLE, tolerates, untolerated_taint
from edgeworkers.cloud.tolerations import NOT_READY, UNREACHABLE
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings
from edgeworkers.constants import ANNOTATION_MIRROR
from edgeworkers.k8s import status
from edgeworkers.k8s.metavalidation import (
    FIELD_IMMUTABLE,
    as_dict,
    nonnegative,
    validate_annotations,
    validate_labels,
)
from edgeworkers.k8s.pod import default_pod
from edgeworkers.k8s.podvalidation import validate_pod_spec
from edgeworkers.k8s.status import FieldError, invalid_value, not_supported, required

log = structlog.get_logger(__name__)

RESOURCE = "daemonsets"
COMPONENT = "daemonset-controller"
HASH_LABEL = "controller-revision-hash"  # apps.DefaultDaemonSetUniqueLabelKey
ROLLING_UPDATE, ON_DELETE = "RollingUpdate", "OnDelete"
NETWORK_UNAVAILABLE_TAINT = "node.kubernetes.io/network-unavailable"
# kube's flowcontrol back-off for deleting failed daemon pods: 1 s doubling to 15 min.
FAILED_POD_BACKOFF_S, FAILED_POD_BACKOFF_MAX_S = 1.0, 900.0


# -- defaulting and validation -----------------------------------------------------------------------------------

def default_daemonset(obj: dict) -> dict:
    """apps/v1 ``SetDefaults_DaemonSet``: RollingUpdate (maxUnavailable 1, maxSurge 0), revisionHistoryLimit 10, and
    the template's pod spec defaulted as a pod's."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    strategy["type"] = strategy.get("type") or ROLLING_UPDATE
    if strategy["type"] == ROLLING_UPDATE:
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        for field, default in (("maxUnavailable", 1), ("maxSurge", 0)):
            if rolling.get(field) is None:
                rolling[field] = default
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec", {}), dict):
        template["spec"] = default_pod({"spec": template.get("spec") or {}})["spec"]
    return obj


_PERCENT_MESSAGE = ("a valid percent string must be a numeric string followed by an ending '%' "
                    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def _percent(value: str) -> int | None:
    digits = value[:-1]
    return int(digits) if value.endswith("%") and digits.isdigit() else None


def _int_or_percent(value: object, path: str) -> list[FieldError]:
    """``ValidatePositiveIntOrPercent`` and ``IsNotMoreThan100Percent``."""
    if isinstance(value, str):
        percent = _percent(value)
        if percent is None:
            return [invalid_value(path, value, _PERCENT_MESSAGE)]
        return [invalid_value(path, value, "must not be greater than 100%")] if percent > 100 else []
    return nonnegative(path, value)


def _scaled(value: object, total: int) -> int:
    """``GetScaledValueFromIntOrPercent`` rounding up (0 for a malformed value, which validation keeps out)."""
    if isinstance(value, str):
        return math.ceil((_percent(value) or 0) * total / 100)
    return value if isinstance(value, int) else 0


def _update_strategy(strategy: dict) -> list[FieldError]:
    path = "spec.updateStrategy"
    kind = strategy.get("type")
    if kind == ON_DELETE:
        return []
    if kind != ROLLING_UPDATE:
        return [not_supported(path, strategy, (ROLLING_UPDATE, ON_DELETE))]
    rolling = strategy.get("rollingUpdate")
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate")]
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = _int_or_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")
    errs += _int_or_percent(surge, f"{path}.rollingUpdate.maxSurge")
    has_unavailable, has_surge = _scaled(unavailable, 100) != 0, _scaled(surge, 100) != 0
    if has_unavailable and has_surge:
        errs.append(invalid_value(f"{path}.rollingUpdate.maxSurge", surge,
                                  "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(required(f"{path}.rollingUpdate.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errs


def validate_daemonset(obj: dict, old: dict | None) -> list[FieldError]:
    """``ValidateDaemonSet`` (and on update the immutable selector); the template's pod spec is validated as a pod's,
    its errors under ``spec.template.``."""
    spec = as_dict(obj.get("spec"))
    template = as_dict(spec.get("template"))
    template_meta, pod_spec = as_dict(template.get("metadata")), as_dict(template.get("spec"))
    labels = as_dict(template_meta.get("labels"))
    errs: list[FieldError] = []
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(required("spec.selector"))
    else:
        errs += validate_labels(selector.get("matchLabels"), "spec.selector.matchLabels")
        try:
            parsed = from_label_selector(selector)
        except ValueError as exc:
            errs.append(invalid_value("spec.selector", selector, str(exc)))
        else:
            if parsed is None or parsed.empty():
                errs.append(invalid_value("spec.selector", selector, "empty selector is invalid for daemonset"))
            elif not parsed.matches(labels):
                errs.append(invalid_value("spec.template.metadata.labels", labels,
                                          "`selector` does not match template `labels`"))
    errs += validate_labels(labels, "spec.template.metadata.labels")
    errs += validate_annotations(template_meta.get("annotations"), "spec.template.metadata.annotations")
    errs += [e._replace(field="spec.template." + e.field) for e in validate_pod_spec(pod_spec)]
    if pod_spec.get("restartPolicy") != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", pod_spec.get("restartPolicy"), ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errs.append(invalid_value("spec.template.spec.activeDeadlineSeconds", pod_spec["activeDeadlineSeconds"],
                                  "activeDeadlineSeconds in DaemonSet is not Supported"))
    errs += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errs += nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    errs += _update_strategy(as_dict(spec.get("updateStrategy")))
    if old is not None and as_dict(old.get("spec")).get("selector") != selector:
        errs.append(invalid_value("spec.selector", selector, FIELD_IMMUTABLE))
    return errs


# -- which nodes run a daemon pod ----------------------------------------------------------------------------------

def daemon_tolerations(spec: dict) -> list[dict]:
    """``util.AddOrUpdateDaemonPodTolerations``: the pod spec's tolerations with, replacing any equal one, those of a
    node not ready or unreachable (``NoExecute``, for ever), under pressure or cordoned (``NoSchedule``), and of a
    network not ready for a host-network pod."""
    tolerations = [dict(t) for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    wanted = [(NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute"),
              (CONDITION_TAINTS["DiskPressure"], "NoSchedule"), (CONDITION_TAINTS["MemoryPressure"], "NoSchedule"),
              (CONDITION_TAINTS["PIDPressure"], "NoSchedule"), (UNSCHEDULABLE, "NoSchedule")]
    if spec.get("hostNetwork"):
        wanted.append((NETWORK_UNAVAILABLE_TAINT, "NoSchedule"))
    for key, effect in wanted:
        toleration = {"key": key, "operator": "Exists", "effect": effect}
        same = [i for i, t in enumerate(tolerations)
                if (t.get("key", ""), t.get("operator", ""), t.get("value", ""), t.get("effect", "")) ==
                (key, "Exists", "", effect)]
        for i in same:
            tolerations[i] = toleration
        if not same:
            tolerations.append(toleration)
    return tolerations


def daemon_pod(ds: dict, node_name: str) -> dict:
    """kube's ``NewPod``: the template's pod on ``node_name``, with the daemon tolerations (what the predicates judge)."""
    template = ds["spec"]["template"]
    spec = template.get("spec") or {}
    return {"metadata": {**(template.get("metadata") or {}), "namespace": ds["metadata"]["namespace"]},
            "spec": {**spec, "nodeName": node_name, "tolerations": daemon_tolerations(spec)}}


Verdicts = dict[str, tuple[bool, bool]]  # node name -> should_run(ds, node), for one sync


def should_run(ds: dict, node: dict) -> tuple[bool, bool]:
    """kube's ``NodeShouldRunDaemonPod``: (a pod should be made on ``node``, a pod there should keep running)."""
    wanted = ((ds["spec"]["template"].get("spec")) or {}).get("nodeName")
    name = node["metadata"]["name"]
    if wanted and wanted != name:
        return False, False
    pod = daemon_pod(ds, name)
    if not matches_node(pod, node):
        return False, False
    if untolerated_taint(pod, node) is None:
        return True, True
    tolerations = pod["spec"]["tolerations"]
    evicting = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
    return False, all(any(tolerates(tol, taint) for tol in tolerations) for taint in evicting)


def target_node(pod: dict) -> str | None:
    """kube's ``GetTargetNodeName``: the pod's node, or the one its node affinity pins it to while unbound."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required_ = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required_.get("nodeSelectorTerms") or []:
        for expression in term.get("matchFields") or []:
            if expression.get("key") == "metadata.name" and expression.get("operator") == "In":
                values = expression.get("values") or []
                return values[0] if len(values) == 1 else None
    return None


def pin_to_node(spec: dict, node_name: str) -> dict:
    """kube's ``ReplaceDaemonSetPodNodeNameNodeAffinity``: the required node affinity replaced by one term matching
    the node's ``metadata.name``, so the scheduler (here the binder) binds the pod there and nowhere else."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        **(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}), "nodeSelectorTerms": [term]}
    affinity["nodeAffinity"] = node_affinity
    return {**spec, "affinity": affinity}


def _rolling(ds: dict) -> dict | None:
    strategy = ds["spec"].get("updateStrategy") or {}
    return strategy.get("rollingUpdate") or {} if strategy.get("type") == ROLLING_UPDATE else None


def surge_count(ds: dict, desired: int) -> int:
    rolling = _rolling(ds)
    return _scaled(rolling.get("maxSurge"), desired) if rolling is not None else 0


def unavailable_count(ds: dict, desired: int) -> int:
    rolling = _rolling(ds)
    return _scaled(rolling.get("maxUnavailable"), desired) if rolling is not None else 0


def is_updated(pod: dict, hash_: str) -> bool:
    return bool(hash_) and (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == hash_


def _by_creation(pod: dict) -> tuple:
    """kube's ``podByCreationTimestampAndPhase``: bound pods first, then oldest first."""
    meta = pod["metadata"]
    return (not (pod.get("spec") or {}).get("nodeName"), meta.get("creationTimestamp", ""), meta["name"])


# -- history -------------------------------------------------------------------------------------------------------

def revision_patch(ds: dict) -> dict:
    """kube's ``getPatch``: the strategic merge patch that puts this template back (a revision's ``data``, what
    ``kubectl rollout undo`` sends)."""
    return {"spec": {"template": {**workloads.copy(ds["spec"]["template"]), "$patch": "replace"}}}


@dataclass
class _Backoff:
    """client-go's ``flowcontrol.Backoff`` without jitter: per key, a delay doubling from the last step."""

    delays: dict[str, tuple[float, dt.datetime]] = field(default_factory=dict)

    def waiting(self, key: str, now: dt.datetime) -> float:
        """Seconds left of the key's delay since its last step (0: not in back-off)."""
        delay, last = self.delays.get(key, (0.0, now))
        return max(delay - (now - last).total_seconds(), 0.0)

    def step(self, key: str, now: dt.datetime) -> None:
        delay, last = self.delays.get(key, (0.0, now))
        expired = (now - last).total_seconds() > 2 * FAILED_POD_BACKOFF_MAX_S
        delay = FAILED_POD_BACKOFF_S if not delay or expired else min(delay * 2, FAILED_POD_BACKOFF_MAX_S)
        self.delays[key] = (delay, now)


class DaemonSetController(Controller):
    """Syncs each DaemonSet: its history, its pods per node, its rolling update, its status."""

    name = COMPONENT
    resource = RESOURCE

    def __init__(self, store: Store, hub: Hub, clock: Clock, resync_s: float = 30.0,
                 limiter: TokenBucket | None = None) -> None:
        super().__init__(store, hub, clock, resync_s, limiter)
        self._failed = _Backoff()

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == RESOURCE:
            yield from super().keys_for(event)
        elif event.resource in ("pods", "controllerrevisions"):
            for obj in (event.object, event.old):
                ref = workloads.controller_of(obj) if obj is not None else None
                if ref is not None and ref.get("kind") == "DaemonSet":
                    yield obj["metadata"]["namespace"], ref.get("name", "")
            meta = event.object["metadata"]
            if workloads.controller_of(event.object) is None and event.type != DELETED:  # an orphan: who adopts it?
                for ds in self.store.list(RESOURCE, meta["namespace"]):
                    if (selector := workloads.selector_of(ds)) is not None and selector.matches(meta.get("labels")):
                        yield meta["namespace"], ds["metadata"]["name"]
        elif event.resource == "nodes":
            for ds in self.store.list(RESOURCE):
                if event.type != MODIFIED or event.old is None or should_run(ds, event.old) != should_run(
                        ds, event.object):
                    yield ds["metadata"]["namespace"], ds["metadata"]["name"]

    def sync(self, key: Key) -> float | None:
        ds = self.store.find(RESOURCE, *key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return None
        selector = workloads.selector_of(ds)
        if selector is None or selector.empty():
            return None  # validation refuses it; kube's controller records SelectingAll and stops
        verdicts = {n["metadata"]["name"]: should_run(ds, n) for n in self.store.list("nodes")}
        current, old = self._history(ds)
        if current is None:
            return 0.0  # a hash collision bumped collisionCount: again with the new hash
        hash_ = current["metadata"]["labels"][HASH_LABEL]
        waits = [self._manage(ds, verdicts, hash_)]
        if _rolling(ds) is not None:
            waits.append(self._rolling_update(ds, verdicts, hash_))
        self._cleanup_history(ds, old)
        waits.append(self._update_status(ds, verdicts, hash_))
        return min((w for w in waits if w is not None), default=None)

    # -- pods ---------------------------------------------------------------------------------------------------

    def _claim(self, resource: str, ds: dict) -> list[dict]:
        """kube's ``ControllerRefManager``: the DaemonSet's objects of ``resource``, after adopting the orphans its
        selector matches (never one being deleted, nor a mirror pod, which its node owns) and releasing its own that
        the selector no longer matches."""
        selector, uid = workloads.selector_of(ds), ds["metadata"]["uid"]
        claimed = []
        for obj in self.store.list(resource, ds["metadata"]["namespace"]):
            meta = obj["metadata"]
            ref = workloads.controller_of(obj)
            if ref is not None and ref.get("uid") != uid:
                continue  # another controller's
            matches = selector is not None and selector.matches(meta.get("labels") or {})
            if ref is not None:
                if matches:
                    claimed.append(obj)
                    continue
                changed = workloads.copy(obj)
                kept = [r for r in meta["ownerReferences"] if not (isinstance(r, dict) and r.get("uid") == uid)]
                changed["metadata"]["ownerReferences"] = kept
                if not kept:
                    del changed["metadata"]["ownerReferences"]
                workloads.update(self.store, self.hub, resource, changed)
            elif ref is None and matches and not meta.get("deletionTimestamp") and ANNOTATION_MIRROR not in (
                    meta.get("annotations") or {}):
                changed = workloads.copy(obj)
                changed["metadata"]["ownerReferences"] = [*(meta.get("ownerReferences") or []),
                                                          workloads.controller_ref(RESOURCE, ds)]
                claimed.append(workloads.update(self.store, self.hub, resource, changed))
        return claimed

    def _pods(self, ds: dict, include_deleted_terminal: bool = False) -> dict[str, list[dict]]:
        """The DaemonSet's pods by the node they are for (kube's ``getNodesToDaemonPods``)."""
        by_node: dict[str, list[dict]] = {}
        for pod in self._claim("pods", ds):
            if (not include_deleted_terminal and pod["metadata"].get("deletionTimestamp")
                    and (pod.get("status") or {}).get("phase") in workloads.TERMINAL):
                continue
            if (node := target_node(pod)) is not None:
                by_node.setdefault(node, []).append(pod)
        return by_node

    def _manage(self, ds: dict, verdicts: Verdicts, hash_: str) -> float | None:
        """Make the missing pods, delete the failed, excess and misplaced ones (kube's ``manage``); the seconds until
        a failed pod's back-off ends or more writes are allowed, if either is waiting."""
        by_node = self._pods(ds)
        surge = surge_count(ds, 1) > 0
        now = self.clock()
        create: list[str] = []
        delete: list[dict] = []
        wait: float | None = None
        for name, (run, keep) in verdicts.items():
            pods = by_node.get(name)
            if run and pods is None:
                create.append(name)
            elif keep and pods is not None:
                running = []
                for pod in pods:
                    phase = (pod.get("status") or {}).get("phase")
                    if pod["metadata"].get("deletionTimestamp"):
                        continue
                    if phase == "Failed":
                        generation = (ds.get("status") or {}).get("observedGeneration", 0)
                        backoff_key = f"{ds['metadata']['uid']}/{generation}/{name}"
                        if (left := self._failed.waiting(backoff_key, now)) > 0:
                            wait = left if wait is None else min(wait, left)
                            continue
                        self._failed.step(backoff_key, now)
                        self._event(ds, "Warning", "FailedDaemonPod", f"Found failed daemon pod "
                                    f"{pod['metadata']['namespace']}/{pod['metadata']['name']} on node {name}, "
                                    "will try to kill it")
                        delete.append(pod)
                    elif phase == "Succeeded":
                        self._event(ds, "Normal", "SucceededDaemonPod", f"Found succeeded daemon pod "
                                    f"{pod['metadata']['namespace']}/{pod['metadata']['name']} on node {name}, "
                                    "will try to delete it")
                        delete.append(pod)
                    else:
                        running.append(pod)
                create_here, delete_here = self._excess(ds, running, run, surge, hash_, now)
                create += [name] if create_here else []
                delete += delete_here
            elif not keep and pods is not None:
                delete += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        delete += [p for node, pods in by_node.items() if node not in verdicts for p in pods
                   if not (p.get("spec") or {}).get("nodeName")]  # unbound, for a node that is gone
        paced = self._sync_nodes(ds, delete, create, hash_)
        return min((w for w in (wait, paced) if w is not None), default=None)

    def _excess(self, ds: dict, running: list[dict], run: bool, surge: bool, hash_: str,
                now: dt.datetime) -> tuple[bool, list[dict]]:
        """On one node: whether a pod is to be made, and which running ones go (one pod, or with surge an old one
        kept beside a new one until the new one is available)."""
        running = sorted(running, key=_by_creation)
        if not surge:
            return False, running[1:]
        if len(running) <= 1:
            return not running and run, []
        newest_new = next((p for p in running if is_updated(p, hash_)), None)
        oldest_old = next((p for p in running if not is_updated(p, hash_)), None)
        delete = [p for p in running if p is not newest_new and p is not oldest_old]
        if newest_new is not None and oldest_old is not None and (
                not workloads.is_ready(oldest_old)
                or workloads.is_available(newest_new, ds["spec"].get("minReadySeconds") or 0, now)):
            delete.append(oldest_old)
        return False, delete

    def _sync_nodes(self, ds: dict, delete: list[dict], create: list[str], hash_: str) -> float | None:
        """Make the pods of ``create``'s nodes, then delete ``delete``, as many as the pace allows; when to look
        again for the rest."""
        allowed, wait = self.pace(ds, len(create) + len(delete))
        delete = delete[:max(allowed - len(create), 0)]
        create = create[:allowed]
        template = ds["spec"]["template"]
        spec = {**(template.get("spec") or {}), "tolerations": daemon_tolerations(template.get("spec") or {})}
        for node in create:
            pod = workloads.pod_from_template(RESOURCE, ds, template, f"{ds['metadata']['name']}-",
                                              labels={HASH_LABEL: hash_}, spec=pin_to_node(spec, node))
            try:
                made = workloads.create_pod(self.store, self.hub, pod)
            except status.APIError as exc:
                self._event(ds, "Warning", "FailedCreate", f"Error creating: {exc}")
                raise
            self._event(ds, "Normal", "SuccessfulCreate", f"Created pod: {made['metadata']['name']}")
        for pod in delete:
            workloads.delete_pod(self.store, self.hub, pod)
            self._event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        return wait

    def _event(self, ds: dict, type_: str, reason: str, message: str) -> None:
        kind = RESOURCES[RESOURCE]
        record(self.store, self.hub, event_on(ds, kind.kind, kind.api_version, type_, reason, message, COMPONENT,
                                              self.clock()))

    # -- rolling update -----------------------------------------------------------------------------------------

    def _rolling_update(self, ds: dict, verdicts: Verdicts, hash_: str) -> float | None:
        """kube's ``rollingUpdate``: without surge, delete old pods while at most ``maxUnavailable`` are unavailable
        (the next manage makes their successors); with surge, make new pods beside old ones, at most ``maxSurge``
        at a time, and delete an old one once its successor is available."""
        by_node = self._pods(ds)
        desired = 0
        for name, (run, _keep) in verdicts.items():
            if run:
                desired += 1
                by_node.setdefault(name, [])
        max_surge, max_unavailable = surge_count(ds, desired), unavailable_count(ds, desired)
        if desired and not max_surge and not max_unavailable:
            max_unavailable = 1
        now = self.clock()
        min_ready = ds["spec"].get("minReadySeconds") or 0

        def available(pod: dict) -> bool:
            return workloads.is_available(pod, min_ready, now)

        if not max_surge:
            unavailable, replace, candidates = 0, [], []
            for node_name in sorted(by_node):
                found = _new_and_old(by_node[node_name], hash_)
                if found is None or (found[0] is None) == (found[1] is None):
                    unavailable += 1  # the manage loop makes or prunes pods here
                    continue
                new, old = found
                if new is not None:
                    unavailable += not available(new)
                elif not available(old):
                    replace.append(old)
                    unavailable += 1
                elif unavailable < max_unavailable:
                    candidates.append(old)
            room = min(max(max_unavailable - unavailable, 0), len(candidates))
            return self._sync_nodes(ds, replace + candidates[:room], [], hash_)
        surged = available_count = 0
        delete, misplaced, allowed, candidates = [], [], [], []
        for node_name in sorted(by_node):
            found = _new_and_old(by_node[node_name], hash_)
            if found is None:
                surged += 1
                continue
            new, old = found
            if (old or new) is not None and available(old or new):
                available_count += 1
            if old is None:
                continue
            if new is None:
                runs = verdicts.get(node_name, (False, False))[0]
                if not available(old) and runs:
                    allowed.append(node_name)
                elif not available(old):
                    delete.append(old)
                elif not runs:
                    misplaced.append(old)
                elif surged < max_surge:
                    candidates.append(node_name)
            elif not available(new):
                surged += 1
            else:
                delete.append(old)
        if (deletable := available_count - desired) > 0:
            delete += misplaced[:deletable]
        room = min(max(max_surge - surged, 0), len(candidates))
        return self._sync_nodes(ds, delete, allowed + candidates[:room], hash_)

    # -- history ------------------------------------------------------------------------------------------------

    def _history(self, ds: dict) -> tuple[dict | None, list[dict]]:
        """kube's ``constructHistory``: the revision of the current template (made, or renumbered to the newest) and
        the older ones."""
        revisions = self._claim("controllerrevisions", ds)
        patch = revision_patch(ds)
        current = [r for r in revisions if r.get("data") == patch]
        old = [r for r in revisions if r.get("data") != patch]
        number = max((r.get("revision") or 0 for r in old), default=0) + 1
        if not current:
            return self._snapshot(ds, patch, number), old
        keep = max(current, key=lambda r: r.get("revision") or 0)
        for duplicate in current:
            if duplicate is not keep:
                labels = duplicate["metadata"]["labels"]
                self._relabel(ds, labels.get(HASH_LABEL), keep["metadata"]["labels"][HASH_LABEL])
                workloads.delete(self.store, self.hub, "controllerrevisions", duplicate)
        if (keep.get("revision") or 0) < number:
            keep = workloads.update(self.store, self.hub, "controllerrevisions",
                                    {**workloads.copy(keep), "revision": number})
        return keep, old

    def _snapshot(self, ds: dict, patch: dict, number: int) -> dict | None:
        """A new revision ``<ds>-<hash>``; None after a hash collision with another template (collisionCount bumped)."""
        meta = ds["metadata"]
        collisions = (ds.get("status") or {}).get("collisionCount") or 0
        hash_ = workloads.template_hash(ds["spec"]["template"], collisions)
        name = f"{meta['name']}-{hash_}"
        existing = self.store.find("controllerrevisions", meta["namespace"], name)
        if existing is not None:
            if existing.get("data") == patch:
                return existing
            changed = workloads.copy(ds)
            changed.setdefault("status", {})["collisionCount"] = collisions + 1
            workloads.update(self.store, self.hub, RESOURCE, changed)
            log.info("revision hash collision", namespace=meta["namespace"], name=meta["name"],
                     collision_count=collisions + 1)
            return None
        labels = {**((ds["spec"]["template"].get("metadata") or {}).get("labels") or {}), HASH_LABEL: hash_}
        revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                    "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                                 **({"annotations": dict(meta["annotations"])} if meta.get("annotations") else {}),
                                 "ownerReferences": [workloads.controller_ref(RESOURCE, ds)]},
                    "data": patch, "revision": number}
        return workloads.create(self.store, self.hub, "controllerrevisions", revision)

    def _relabel(self, ds: dict, old_hash: str | None, new_hash: str) -> None:
        for pods in self._pods(ds, include_deleted_terminal=True).values():
            for pod in pods:
                if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == old_hash:
                    changed = workloads.copy(pod)
                    changed["metadata"]["labels"][HASH_LABEL] = new_hash
                    workloads.update(self.store, self.hub, "pods", changed)

    def _cleanup_history(self, ds: dict, old: list[dict]) -> None:
        """Delete the oldest revisions beyond ``revisionHistoryLimit``, never one a pod still runs."""
        extra = len(old) - (ds["spec"].get("revisionHistoryLimit", 10) or 0)
        if extra <= 0:
            return
        live = {(p["metadata"].get("labels") or {}).get(HASH_LABEL)
                for pods in self._pods(ds, include_deleted_terminal=True).values() for p in pods}
        for revision in sorted(old, key=lambda r: r.get("revision") or 0):
            if extra <= 0:
                break
            if revision["metadata"]["labels"].get(HASH_LABEL) in live:
                continue
            workloads.delete(self.store, self.hub, "controllerrevisions", revision)
            extra -= 1

    # -- status -------------------------------------------------------------------------------------------------

    def _update_status(self, ds: dict, verdicts: Verdicts, hash_: str) -> float | None:
        """kube's ``updateDaemonSetStatus``, judging each node by its oldest pod; the seconds after which to look
        again while a ready pod waits out ``minReadySeconds``."""
        by_node = self._pods(ds)
        now = self.clock()
        min_ready = ds["spec"].get("minReadySeconds") or 0
        desired = current = misscheduled = ready = updated = available = 0
        for name, (run, _keep) in verdicts.items():
            pods = sorted(by_node.get(name) or [], key=_by_creation)
            if not run:
                misscheduled += bool(pods)
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            if workloads.is_ready(pods[0]):
                ready += 1
                available += workloads.is_available(pods[0], min_ready, now)
            updated += is_updated(pods[0], hash_)
        always = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                  "desiredNumberScheduled": desired, "numberReady": ready}
        omitted_when_zero = {"observedGeneration": ds["metadata"].get("generation", 1),
                             "updatedNumberScheduled": updated, "numberAvailable": available,
                             "numberUnavailable": desired - available}  # omitempty in apps/v1
        old_status = ds.get("status") or {}
        new_status = {**{k: v for k, v in old_status.items() if k not in always and k not in omitted_when_zero},
                      **always, **{k: v for k, v in omitted_when_zero.items() if v}}
        if new_status != old_status:
            workloads.update(self.store, self.hub, RESOURCE, {**workloads.copy(ds), "status": new_status})
        return float(min_ready) if min_ready and ready != available else None


def _new_and_old(pods: list[dict], hash_: str) -> tuple[dict | None, dict | None] | None:
    """kube's ``findUpdatedPodsOnNode``: the node's pod of the current template and its older one, ignoring pods
    being deleted; None when there are more than one of either (the manage loop prunes them first)."""
    new = old = None
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if is_updated(pod, hash_):
            if new is not None:
                return None
            new = pod
        else:
            if old is not None:
                return None
            old = pod
    return new, old


def make_controller(store: Store, hub: Hub, clock: Clock, _settings: Settings,
                    limiter: TokenBucket) -> DaemonSetController:
    return DaemonSetController(store, hub, clock, limiter=limiter)
