"""The ReplicaSet controller, as kube-controller-manager's (pkg/controller/replicaset), which also serves
ReplicationControllers (kube runs the RC manager as this controller on converted objects; an RC's selector is a plain
label map).

One sync of an object: claim its active pods and the orphans of its namespace, found in an index of the pods by their
controller's uid rather than by listing the namespace (adopt orphans its selector matches, release owned pods it no
longer matches), create the missing ones from the template (at most ``BURST_REPLICAS`` per sync, in slow-start
batches that stop at the first failure) or delete the extras in kube's order (``controller.ActivePodsWithRanks``),
then write the status from the pods as the nodes report them. A pod that finished or is being deleted is not active:
it is replaced. Syncs read the store itself, which is never behind, so kube's "expectations" are not needed here (a
create or delete shows in the next sync). Creates and deletes go at the controllers' shared pace (``Controller.pace``):
a sync that runs out of tokens stops its batch there, without an error, and comes back when its booked ones are due.
"""
from __future__ import annotations

from collections.abc import Iterable

import structlog

from edgeworkers.cloud import workloads
from edgeworkers.cloud.controller import Controller, Key, TokenBucket
from edgeworkers.cloud.index import Index
from edgeworkers.cloud.recorder import event_on, record
from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.cloud.selectors import LabelSelector, from_label_selector
from edgeworkers.cloud.store import Clock, Event, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings
from edgeworkers.k8s import status
from edgeworkers.k8s.metavalidation import FIELD_IMMUTABLE, as_dict, nonnegative, validate_labels
from edgeworkers.k8s.printers import parse_time
from edgeworkers.k8s.status import FieldError, invalid_value, required
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.k8s.workloadvalidation import validate_label_selector, validate_replicated_template

log = structlog.get_logger(__name__)

BURST_REPLICAS = 500  # kube's --replicaset burst: creations or deletions per sync
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
REPLICA_FAILURE = "ReplicaFailure"
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}  # any other phase ranks lowest, with Pending


# -- defaulting and validation ---------------------------------------------------------------------------------------

def default_replica_set(obj: dict) -> dict:
    """apps/v1 ``SetDefaults_ReplicaSet`` (replicas 1) and the pod defaults on the template."""
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        workloads.default_template(spec.get("template"))
    return obj


def default_replication_controller(obj: dict) -> dict:
    """core/v1 ``SetDefaults_ReplicationController``: selector and labels from the template's labels, replicas 1."""
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return obj
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if isinstance(labels, dict):
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = obj.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    workloads.default_template(template)
    return obj


def _template_labels(spec: dict) -> dict:
    return as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))


def validate_replica_set(new: dict, old: dict | None) -> list[FieldError]:
    """apps ``ValidateReplicaSetSpec`` and, on update, apps/v1's immutable selector."""
    spec = as_dict(new.get("spec"))
    selector = spec.get("selector")
    errs = nonnegative("spec.replicas", spec.get("replicas")) + nonnegative("spec.minReadySeconds",
                                                                            spec.get("minReadySeconds"))
    if selector is None:
        errs.append(required("spec.selector"))
    else:
        errs += validate_label_selector(selector, "spec.selector")
        if not as_dict(selector).get("matchLabels") and not as_dict(selector).get("matchExpressions"):
            errs.append(invalid_value("spec.selector", selector, "empty selector is invalid for deployment"))
    try:
        parsed = from_label_selector(as_dict(selector) if selector is not None else None)
    except ValueError:
        errs.append(invalid_value("spec.selector", selector, "invalid label selector"))
    else:  # a missing selector selects nothing, so matches no template; an empty one is not checked
        matches = parsed is not None and (parsed.empty() or parsed.matches(_template_labels(spec)))
        errs += validate_replicated_template(spec.get("template"), matches, "spec.template", "ReplicaSet")
    if old is not None and as_dict(old.get("spec")).get("selector") != selector:
        errs.append(invalid_value("spec.selector", selector, FIELD_IMMUTABLE))
    return errs


def validate_replication_controller(new: dict, _old: dict | None) -> list[FieldError]:
    """core ``ValidateReplicationControllerSpec``: a non-empty selector (a label map) matching the template."""
    spec = as_dict(new.get("spec"))
    selector = as_dict(spec.get("selector"))
    errs = nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errs += [required("spec.selector")] if not selector else validate_labels(selector, "spec.selector")
    errs += nonnegative("spec.replicas", spec.get("replicas"))
    labels = _template_labels(spec)
    matches = all(labels.get(key) == value for key, value in selector.items())
    errs += validate_replicated_template(spec.get("template"), matches, "spec.template", "ReplicationController")
    return errs


# -- which pods go first ---------------------------------------------------------------------------------------------

def _deletion_cost(pod: dict) -> int:
    return workloads.int_annotation(pod, DELETION_COST)


def _restarts(pod: dict) -> int:
    return max((c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or []),
               default=0)


def deletion_order(pods: list[dict], related: list[dict] | None = None) -> list[dict]:
    """``pods`` sorted as kube's ``ActivePodsWithRanks`` deletes them, the first to go first: unscheduled before
    scheduled, Pending before Unknown before Running, not ready before ready, lower ``pod-deletion-cost`` first,
    more pods (of ``related``) on the same node first, ready for less time first, more restarts first, newer first."""
    per_node: dict[str, int] = {}
    for pod in related if related is not None else pods:
        if node := (pod.get("spec") or {}).get("nodeName"):
            per_node[node] = per_node.get(node, 0) + 1

    def key(pod: dict) -> tuple:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        since = workloads.ready_since(pod)
        created = parse_time(pod["metadata"].get("creationTimestamp"))
        return (bool(node), _PHASE_RANK.get((pod.get("status") or {}).get("phase", ""), 0), since is not None,
                _deletion_cost(pod), -per_node.get(node, 0) if node else 0,
                -since.timestamp() if since is not None else 0, -_restarts(pod),
                -created.timestamp() if created is not None else float("-inf"))
    return sorted(pods, key=key)


# -- the controller ------------------------------------------------------------------------------------------------

def _owner_key(pod: dict) -> tuple[str, str | None]:
    """A pod's namespace and its controller's uid (None: an orphan, which a sync may adopt)."""
    ref = workloads.controller_of(pod)
    return pod["metadata"]["namespace"], ref.get("uid") if ref is not None else None


class ReplicaSetController(Controller):
    """Keeps the pods of every ReplicaSet (or, as ``ReplicationManager``, every ReplicationController)."""

    name = "replicaset"
    resource = "replicasets"
    component = "replicaset-controller"

    def __init__(self, store: Store, hub: Hub, clock: Clock, resync_s: float = 30.0,
                 burst: int = BURST_REPLICAS, limiter: TokenBucket | None = None) -> None:
        self.pods = Index(store, hub, "pods", _owner_key)
        super().__init__(store, hub, clock, resync_s, limiter)
        self.kind = RESOURCES[self.resource].kind
        self.api_version = RESOURCES[self.resource].api_version
        self.burst = burst

    # -- which objects an event concerns

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource != "pods":
            yield from super().keys_for(event)
            return
        keys: set[Key] = set()
        for pod in (event.object, event.old):
            if pod is None:
                continue
            ref = workloads.controller_of(pod)
            namespace = pod["metadata"]["namespace"]
            if ref is None:  # an orphan: whoever may adopt it
                keys |= {(namespace, owner["metadata"]["name"]) for owner in self.store.list(self.resource, namespace)
                         if self._selects(owner, pod)}
            elif ref.get("kind") == self.kind:
                keys.add((namespace, ref.get("name", "")))
        yield from keys

    def _selects(self, owner: dict, pod: dict) -> bool:
        selector = workloads.selector_of(owner)
        return selector is not None and not selector.empty() and selector.matches(pod["metadata"].get("labels"))

    # -- one sync

    def sync(self, key: Key) -> float | None:
        owner = self.store.find(self.resource, *key)
        if owner is None:
            return None
        selector = workloads.selector_of(owner)
        candidates = self.pods.get((key[0], owner["metadata"]["uid"])) + self.pods.get((key[0], None))
        pods = sorted((p for p in candidates if workloads.is_active(p)), key=lambda p: p["metadata"]["name"])
        pods = self._claim(owner, selector, pods)
        error: str | None = None
        paced: float | None = None
        diff = len(pods) - owner["spec"].get("replicas", 1)
        if not owner["metadata"].get("deletionTimestamp"):
            error, paced = self._manage(owner, pods, diff)
        again = self._write_status(owner, pods, error, diff)
        if error is not None:
            raise ReplicaFailure(error)  # retried with the controller's back-off, as kube requeues a failed sync
        return min((w for w in (again, paced) if w is not None), default=None)

    def _claim(self, owner: dict, selector: LabelSelector | None, pods: list[dict]) -> list[dict]:
        """kube's ``ClaimPods``: the owner's pods, after adopting matching orphans and releasing non-matching ones."""
        uid, deleting = owner["metadata"]["uid"], bool(owner["metadata"].get("deletionTimestamp"))
        usable = selector is not None and not selector.empty()
        claimed = []
        for pod in pods:
            ref = workloads.controller_of(pod)
            matches = usable and selector.matches(pod["metadata"].get("labels"))  # type: ignore[union-attr]
            if ref is not None and ref.get("uid") == uid:
                if matches or deleting:
                    claimed.append(pod)
                else:
                    self._set_owner(pod, None, uid)
            elif ref is None and matches and not deleting and not pod["metadata"].get("deletionTimestamp"):
                claimed.append(self._set_owner(pod, workloads.controller_ref(self.resource, owner), uid))
        return claimed

    def _set_owner(self, pod: dict, ref: dict | None, uid: str) -> dict:
        """Adopt (``ref``) or release (None) ``pod``: its ownerReferences without ``uid``'s, plus ``ref``."""
        new = workloads.copy(pod)
        refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        refs += [ref] if ref is not None else []
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        return workloads.update(self.store, self.hub, "pods", new)

    def _manage(self, owner: dict, pods: list[dict], diff: int) -> tuple[str | None, float | None]:
        """Create or delete pods toward ``spec.replicas``, as many as the pace allows; the first error, if any, and
        when to look again for the rest."""
        allowed, wait = self.pace(owner, min(abs(diff), self.burst))
        if diff < 0:
            return self._create(owner, allowed), wait
        for pod in deletion_order(pods)[:allowed] if diff > 0 else []:
            workloads.delete_pod(self.store, self.hub, pod)
            self._record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        return None, wait

    def _create(self, owner: dict, count: int) -> str | None:
        """kube's ``slowStartBatch``: batches of 1, 2, 4 ... pods, none after a batch that failed."""
        template = owner["spec"].get("template") or {}
        batch, left = 1, count
        while left > 0:
            error = None
            for _ in range(min(batch, left)):
                pod = workloads.pod_from_template(self.resource, owner, template, f"{owner['metadata']['name']}-")
                try:
                    created = workloads.create_pod(self.store, self.hub, pod)
                except status.APIError as exc:
                    error = error or exc.status.get("message", str(exc))
                    self._record(owner, "Warning", "FailedCreate", f"Error creating: {error}")
                    continue
                self._record(owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
            if error is not None:
                return error
            left -= min(batch, left)
            batch *= 2
        return None

    def _record(self, owner: dict, type_: str, reason: str, message: str) -> None:
        record(self.store, self.hub, event_on(owner, self.kind, self.api_version, type_, reason, message,
                                              self.component, self.clock()))

    def _write_status(self, owner: dict, pods: list[dict], error: str | None, diff: int) -> float | None:
        """kube's ``calculateStatus`` and ``updateReplicaSetStatus``; when to look again for pods still to become
        available (minReadySeconds)."""
        now, spec = self.clock(), owner["spec"]
        min_ready = spec.get("minReadySeconds") or 0
        template_labels = _template_labels(spec)
        labeled = sum(all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
                      for p in pods)
        ready = [p for p in pods if workloads.is_ready(p)]
        available = [p for p in ready if workloads.is_available(p, min_ready, now)]
        old = owner.get("status") or {}
        conditions = [c for c in old.get("conditions") or [] if c.get("type") != REPLICA_FAILURE]
        failure = next((c for c in old.get("conditions") or [] if c.get("type") == REPLICA_FAILURE), None)
        if error is not None:
            conditions.append(failure or {"type": REPLICA_FAILURE, "status": "True",
                                          "lastTransitionTime": format_time(now),
                                          "reason": "FailedCreate" if diff < 0 else "FailedDelete", "message": error})
        new_status: dict = {"replicas": len(pods)}
        for field, value in (("fullyLabeledReplicas", labeled), ("readyReplicas", len(ready)),
                             ("availableReplicas", len(available))):
            if value:
                new_status[field] = value
        new_status["observedGeneration"] = owner["metadata"].get("generation", 1)
        if conditions:
            new_status["conditions"] = conditions
        if new_status != old:
            workloads.update(self.store, self.hub, self.resource, {**workloads.copy(owner), "status": new_status})
        waiting = [since for p in ready if p not in available and (since := workloads.ready_since(p)) is not None]
        if not waiting:
            return None
        return min((since - now).total_seconds() + min_ready for since in waiting)


class ReplicationManager(ReplicaSetController):
    """The same controller on ReplicationControllers (kube's ``replication-controller``)."""

    name = "replicationcontroller"
    resource = "replicationcontrollers"
    component = "replication-controller"


class ReplicaFailure(Exception):
    """Pods could not be created (or deleted): the sync is retried with back-off."""


def replica_sets(store: Store, hub: Hub, clock: Clock, _settings: Settings, limiter: TokenBucket) -> Controller:
    return ReplicaSetController(store, hub, clock, limiter=limiter)


def replication_controllers(store: Store, hub: Hub, clock: Clock, _settings: Settings,
                            limiter: TokenBucket) -> Controller:
    return ReplicationManager(store, hub, clock, limiter=limiter)
