"""The Deployment controller, as kube-controller-manager's (pkg/controller/deployment): ReplicaSets named
``<deployment>-<pod-template-hash>``, rolled with ``RollingUpdate`` (maxSurge / maxUnavailable) or ``Recreate``,
revisions in the ``deployment.kubernetes.io/revision`` annotation, old ReplicaSets beyond ``revisionHistoryLimit``
deleted, and the status and ``Available`` / ``Progressing`` conditions kube writes.

It writes ReplicaSets only and reads their statuses (the ReplicaSet controller keeps the pods). ``kubectl rollout
undo`` is client-side (a patch of the template); ``rollout restart`` is a template annotation: both are template
changes like any other.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

from edgeworkers.cloud import workloads
from edgeworkers.cloud.controller import Controller, Key, TokenBucket
from edgeworkers.cloud.recorder import event_on, record
from edgeworkers.cloud.store import DELETED, Clock, Event, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings
from edgeworkers.k8s import pod as pod_model
from edgeworkers.k8s.podvalidation import validate_pod_spec
from edgeworkers.k8s.printers import parse_time
from edgeworkers.k8s.status import FieldError
from edgeworkers.k8s.timefmt import format_time

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
COMPONENT = "deployment-controller"
STRATEGIES = ("Recreate", "RollingUpdate")


# -- defaulting and validation ---------------------------------------------------------------------------------

def default_deployment(obj: dict) -> dict:
    """apps/v1 ``SetDefaults_Deployment`` plus the pod template's defaults."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.get("template")
    if isinstance(template, dict):
        pod = pod_model.default_pod({"metadata": template.get("metadata") or {}, "spec": template.get("spec") or {}})
        template["spec"] = pod["spec"]
    return obj


def _int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, bool) or value is None:
        return [FieldError("FieldValueInvalid", path, value, "must be an integer or percentage (e.g '5%')")]
    if isinstance(value, int):
        return [] if value >= 0 else [FieldError("FieldValueInvalid", path, value,
                                                 "must be greater than or equal to 0")]
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        pct = int(text[:-1])
        return [] if pct <= 100 else [FieldError("FieldValueInvalid", path, value, "must not be greater than 100%")]
    return [FieldError("FieldValueInvalid", path, value, "a valid percent string must be a numeric string followed "
                       "by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")]


def validate_deployment(new: dict, old: dict | None) -> list[FieldError]:
    """apps ``ValidateDeploymentSpec``: replicas, selector (required, matching the template, immutable), strategy,
    and the pod template's spec as a pod's (paths under ``spec.template.``)."""
    spec = new.get("spec") or {}
    errs: list[FieldError] = []
    for field in ("replicas", "revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            errs.append(FieldError("FieldValueInvalid", f"spec.{field}", value, "must be greater than or equal to 0"))
    selector = workloads.selector_of(new)
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not spec.get("selector"):
        errs.append(FieldError("FieldValueRequired", "spec.selector", "", ""))
    elif selector is None or selector.empty():
        errs.append(FieldError("FieldValueInvalid", "spec.selector", spec.get("selector"),
                               "empty selector is invalid for deployment"))
    elif not selector.matches(labels):
        errs.append(FieldError("FieldValueInvalid", "spec.template.metadata.labels", labels,
                               "`selector` does not match template `labels`"))
    if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
        errs.append(FieldError("FieldValueInvalid", "spec.selector", spec.get("selector"), "field is immutable"))
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind not in STRATEGIES:
        errs.append(FieldError("FieldValueNotSupported", "spec.strategy.type", kind, ", ".join(
            f'"{s}"' for s in STRATEGIES)))
    elif kind == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.append(FieldError("FieldValueForbidden", "spec.strategy.rollingUpdate", strategy["rollingUpdate"],
                               "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        for field in ("maxUnavailable", "maxSurge"):
            errs += _int_or_percent(rolling.get(field), f"spec.strategy.rollingUpdate.{field}")
        if not errs and _scaled(rolling["maxUnavailable"], 100, False) == 0 == _scaled(rolling["maxSurge"], 100,
                                                                                       True):
            errs.append(FieldError("FieldValueInvalid", "spec.strategy.rollingUpdate.maxUnavailable",
                                   rolling["maxUnavailable"], "may not be 0 when `maxSurge` is 0"))
    pds, mrs = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(pds, int) and isinstance(mrs, int) and pds <= mrs:
        errs.append(FieldError("FieldValueInvalid", "spec.progressDeadlineSeconds", pds,
                               "must be greater than minReadySeconds"))
    if not template:
        errs.append(FieldError("FieldValueRequired", "spec.template", "", ""))
    else:
        errs += [e._replace(field="spec.template." + e.field) for e in validate_pod_spec(template.get("spec") or {})]
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in (None, "Always"):
            errs.append(FieldError("FieldValueNotSupported", "spec.template.spec.restartPolicy", policy, '"Always"'))
    return errs


# -- arithmetic ----------------------------------------------------------------------------------------------------

def _scaled(value: int | str, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%")) * total / 100
    return math.ceil(share) if round_up else math.floor(share)


def surge_and_unavailable(deployment: dict) -> tuple[int, int]:
    """``ResolveFenceposts``: maxSurge rounded up, maxUnavailable down, and never both 0 (then unavailable is 1)."""
    spec = deployment["spec"]
    if (spec.get("strategy") or {}).get("type") != "RollingUpdate":
        return 0, 0
    rolling, replicas = spec["strategy"].get("rollingUpdate") or {}, spec.get("replicas", 1)
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _replicas(rs: dict) -> int:
    return (rs.get("spec") or {}).get("replicas", 0)


def _status(rs: dict, field: str) -> int:
    return (rs.get("status") or {}).get(field, 0)


def _revision(obj: dict) -> int:
    return workloads.int_annotation(obj, REVISION)


def _comparable(template: dict) -> dict:
    """A template as ``EqualIgnoreHash`` compares it: without the hash label, a null creationTimestamp (kubectl's
    rollback patch carries one) as none."""
    template = workloads.copy(template)
    meta = template.get("metadata") or {}
    meta.get("labels", {}).pop(HASH_LABEL, None)
    if meta.get("creationTimestamp", "") is None:
        del meta["creationTimestamp"]
    return template


# -- the controller --------------------------------------------------------------------------------------------

class DeploymentController(Controller):
    name = "deployment"
    resource = "deployments"

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == "deployments":
            yield from super().keys_for(event)
        elif event.resource == "replicasets":
            ref = workloads.controller_of(event.object)
            if ref is not None and ref.get("kind") == "Deployment":
                yield event.object["metadata"]["namespace"], ref["name"]
        elif event.resource == "pods" and event.type == DELETED:  # a Recreate waits for the old pods to go
            namespace = event.object["metadata"]["namespace"]
            ref = workloads.controller_of(event.object)
            rs = self.store.find("replicasets", namespace, ref["name"]) if ref and ref.get("kind") == "ReplicaSet" \
                else None
            owner = workloads.controller_of(rs) if rs is not None else None
            if owner is not None and owner.get("kind") == "Deployment":
                yield namespace, owner["name"]

    def _now(self) -> dt.datetime:
        return self.clock()

    def sync(self, key: Key) -> float | None:
        deployment = self.store.find("deployments", *key)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return None
        deployment = workloads.copy(deployment)
        owned = sorted((rs for rs in self.store.list("replicasets", key[0])
                        if workloads.controlled_by(rs, deployment)),
                       key=lambda rs: (rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]))
        template = _comparable(deployment["spec"].get("template") or {})
        new = next((rs for rs in owned if _comparable(rs["spec"]["template"]) == template), None)
        olds = [rs for rs in owned if rs is not new]
        if deployment["spec"].get("paused"):
            new = self._scale_in_place(deployment, new, olds)
            return self._write_status(deployment, new, olds, created=False)
        created = new is None
        new = self._new_replica_set(deployment, new, olds)
        if self._is_scaling_event(deployment, new, olds):
            new = self._scale_in_place(deployment, new, olds)
        elif deployment["spec"]["strategy"]["type"] == "Recreate":
            new = self._recreate(deployment, new, olds)
        else:
            new = self._rolling(deployment, new, olds)
        self._cleanup(deployment, olds)
        return self._write_status(deployment, new, [rs for rs in olds if self._exists(rs)], created=created)

    # -- ReplicaSets --------------------------------------------------------------------------------------------

    def _exists(self, rs: dict) -> bool:
        return self.store.find("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"]) is not None

    def _annotations(self, deployment: dict) -> dict[str, str]:
        surge, _ = surge_and_unavailable(deployment)
        wanted = deployment["spec"]["replicas"]
        return {DESIRED: str(wanted), MAX_REPLICAS: str(wanted + surge)}

    def _new_replica_set(self, deployment: dict, new: dict | None, olds: list[dict]) -> dict:
        """Find or create the ReplicaSet of the current template, with the next revision (``getNewReplicaSet``)."""
        revision = str(max((_revision(rs) for rs in olds), default=0) + 1)
        if new is not None:
            if _revision(new) < int(revision):
                new = workloads.copy(new)
                new["metadata"].setdefault("annotations", {})[REVISION] = revision
                new = workloads.update(self.store, self.hub, "replicasets", new)
            self._set_revision(deployment, str(_revision(new)))
            return new
        template = workloads.copy(deployment["spec"]["template"])
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        collisions = (deployment.get("status") or {}).get("collisionCount", 0)
        while True:
            pod_hash = workloads.template_hash(template, collisions)
            if self.store.find("replicasets", namespace, f"{name}-{pod_hash}") is None:
                break
            collisions += 1
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = workloads.copy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        replicas = self._new_replicas(deployment, None, olds)
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{name}-{pod_hash}", "namespace": namespace,
                         "labels": dict(template["metadata"]["labels"]),
                         "annotations": {**self._annotations(deployment), REVISION: revision},
                         "ownerReferences": [workloads.controller_ref("deployments", deployment)]},
            "spec": {"replicas": 0, "minReadySeconds": deployment["spec"].get("minReadySeconds", 0),
                     "selector": selector, "template": template},
            "status": {"replicas": 0},
        }
        new = workloads.create(self.store, self.hub, "replicasets", rs)
        if replicas:
            new = self._scale(deployment, new, replicas)
        self._set_revision(deployment, revision)
        if collisions != (deployment.get("status") or {}).get("collisionCount", 0):
            deployment.setdefault("status", {})["collisionCount"] = collisions
        return new

    def _set_revision(self, deployment: dict, revision: str) -> None:
        annotations = deployment["metadata"].setdefault("annotations", {})
        if annotations.get(REVISION) != revision:
            annotations[REVISION] = revision
            stored = workloads.update(self.store, self.hub, "deployments", deployment)
            deployment["metadata"] = stored["metadata"]

    def _scale(self, deployment: dict, rs: dict, replicas: int) -> dict:
        """Set one ReplicaSet's replicas and record kube's ``ScalingReplicaSet`` event."""
        before = _replicas(rs)
        if before == replicas:
            return rs
        rs = workloads.copy(rs)
        rs["spec"]["replicas"] = replicas
        rs["metadata"].setdefault("annotations", {}).update(self._annotations(deployment))
        rs = workloads.update(self.store, self.hub, "replicasets", rs)
        direction = "up" if replicas > before else "down"
        record(self.store, self.hub, event_on(
            deployment, "Deployment", "apps/v1", "Normal", "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {replicas}", COMPONENT,
            self._now()))
        return rs

    def _new_replicas(self, deployment: dict, new: dict | None, olds: list[dict]) -> int:
        """``NewRSNewReplicas``: how big the new ReplicaSet may be now."""
        wanted = deployment["spec"]["replicas"]
        current = _replicas(new) if new is not None else 0
        if deployment["spec"]["strategy"]["type"] != "RollingUpdate":
            return current  # Recreate scales it up once the old pods are gone
        surge, _ = surge_and_unavailable(deployment)
        total = current + sum(_replicas(rs) for rs in olds)
        if total >= wanted + surge:
            return current
        return current + max(min(wanted + surge - total, wanted - current), 0)

    # -- strategies ---------------------------------------------------------------------------------------------

    def _rolling(self, deployment: dict, new: dict, olds: list[dict]) -> dict:
        """``rolloutRolling``: grow the new ReplicaSet within maxSurge, shrink old ones within maxUnavailable."""
        wanted = deployment["spec"]["replicas"]
        if _replicas(new) > wanted:
            return self._scale(deployment, new, wanted)
        new = self._scale(deployment, new, self._new_replicas(deployment, new, olds))
        self._reconcile_olds(deployment, new, olds)
        return new

    def _reconcile_olds(self, deployment: dict, new: dict, olds: list[dict]) -> None:
        """``reconcileOldReplicaSets``: unhealthy old pods first, then old ones while minAvailable holds."""
        if not sum(_replicas(rs) for rs in olds):
            return
        wanted = deployment["spec"]["replicas"]
        _, unavailable = surge_and_unavailable(deployment)
        min_available = wanted - unavailable
        all_pods = _replicas(new) + sum(_replicas(rs) for rs in olds)
        new_unavailable = _replicas(new) - _status(new, "availableReplicas")
        budget = all_pods - min_available - new_unavailable
        if budget <= 0:
            return
        for i, rs in enumerate(olds):  # cleanupUnhealthyReplicas
            if budget <= 0:
                break
            unhealthy = _replicas(rs) - _status(rs, "availableReplicas")
            if unhealthy > 0:
                cut = min(budget, unhealthy)
                olds[i] = self._scale(deployment, rs, _replicas(rs) - cut)
                budget -= cut
        available = _status(new, "availableReplicas") + sum(_status(rs, "availableReplicas") for rs in olds)
        down = available - min_available
        for i, rs in enumerate(olds):  # scaleDownOldReplicaSetsForRollingUpdate
            if down <= 0:
                break
            cut = min(down, _replicas(rs))
            if cut:
                olds[i] = self._scale(deployment, rs, _replicas(rs) - cut)
                down -= cut

    def _recreate(self, deployment: dict, new: dict, olds: list[dict]) -> dict:
        """``rolloutRecreate``: old ReplicaSets to 0, and the new one up once no old pod runs."""
        for i, rs in enumerate(olds):
            olds[i] = self._scale(deployment, rs, 0)
        namespace = deployment["metadata"]["namespace"]
        old_uids = {rs["metadata"]["uid"] for rs in olds}
        running = any(
            (ref := workloads.controller_of(pod)) is not None and ref.get("uid") in old_uids
            and (pod.get("status") or {}).get("phase") not in workloads.TERMINAL
            for pod in self.store.list("pods", namespace))
        if running:
            return new
        return self._scale(deployment, new, deployment["spec"]["replicas"])

    def _is_scaling_event(self, deployment: dict, new: dict, olds: list[dict]) -> bool:
        """``isScalingEvent``: an active ReplicaSet's desired-replicas annotation differs from spec.replicas."""
        wanted = str(deployment["spec"]["replicas"])
        return any((rs["metadata"].get("annotations") or {}).get(DESIRED, wanted) != wanted
                   for rs in [new, *olds] if _replicas(rs) > 0)

    def _scale_in_place(self, deployment: dict, new: dict | None, olds: list[dict]) -> dict | None:
        """``scale``: a replicas change in the middle of a rollout, spread over the active ReplicaSets in proportion
        to their sizes (kube's proportional scaling, simplified: the rounding leftover goes to the newest)."""
        wanted = deployment["spec"]["replicas"]
        every = [rs for rs in [*olds, new] if rs is not None]
        active = [rs for rs in every if _replicas(rs) > 0] or every[-1:]  # FindActiveOrLatest
        if len(active) == 1:  # the one active ReplicaSet takes spec.replicas
            scaled = self._scale(deployment, active[0], wanted)
            if new is not None and scaled["metadata"]["uid"] == new["metadata"]["uid"]:
                return scaled
            olds[:] = [scaled if rs["metadata"]["uid"] == scaled["metadata"]["uid"] else rs for rs in olds]
            return new
        if not active:
            return new
        surge, _ = surge_and_unavailable(deployment)
        current = sum(_replicas(rs) for rs in active)
        target = wanted + surge if deployment["spec"]["strategy"]["type"] == "RollingUpdate" else wanted
        delta = target - current
        if delta == 0:
            return new
        sizes = {rs["metadata"]["name"]: _replicas(rs) for rs in active}
        shares = {name: max(size + int(delta * size / current), 0) for name, size in sizes.items()}
        leftover = target - sum(shares.values())
        newest = (new if new is not None and _replicas(new) > 0 else active[-1])["metadata"]["name"]
        shares[newest] = max(shares[newest] + leftover, 0)
        for i, rs in enumerate(olds):
            if rs["metadata"]["name"] in shares:
                olds[i] = self._scale(deployment, rs, shares[rs["metadata"]["name"]])
        if new is not None and new["metadata"]["name"] in shares:
            new = self._scale(deployment, new, shares[new["metadata"]["name"]])
        return new

    def _cleanup(self, deployment: dict, olds: list[dict]) -> None:
        """``cleanupDeployment``: delete the oldest empty old ReplicaSets beyond revisionHistoryLimit."""
        limit = deployment["spec"].get("revisionHistoryLimit", 10)
        empty = sorted((rs for rs in olds if _replicas(rs) == 0 and _status(rs, "replicas") == 0
                        and rs["metadata"].get("generation", 1) <= _status(rs, "observedGeneration")
                        and not rs["metadata"].get("deletionTimestamp")), key=_revision)
        for rs in empty[:max(len(olds) - limit, 0)]:
            workloads.delete(self.store, self.hub, "replicasets", rs)

    # -- status ---------------------------------------------------------------------------------------------------

    def _write_status(self, deployment: dict, new: dict | None, olds: list[dict], created: bool) -> float | None:
        """``syncRolloutStatus``: counts, Available and Progressing; the seconds until the progress deadline."""
        spec, old_status = deployment["spec"], deployment.get("status") or {}
        every = [rs for rs in [new, *olds] if rs is not None]
        wanted = spec["replicas"]
        _, max_unavailable = surge_and_unavailable(deployment)
        available = sum(_status(rs, "availableReplicas") for rs in every)
        status: dict[str, Any] = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": sum(_status(rs, "replicas") for rs in every),
            "updatedReplicas": _status(new, "replicas") if new is not None else 0,
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in every),
            "availableReplicas": available,
            "unavailableReplicas": max(sum(_replicas(rs) for rs in every) - available, 0),
        }
        if "collisionCount" in old_status:
            status["collisionCount"] = old_status["collisionCount"]
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        now = format_time(self._now())
        conditions = {c["type"]: c for c in old_status.get("conditions") or []}
        if available >= wanted - max_unavailable:
            _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", now)
        else:
            _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", now)
        again = self._progress(deployment, new, status, old_status, conditions, created, now)
        status["conditions"] = [conditions[t] for t in ("Available", "Progressing", "ReplicaFailure")
                                if t in conditions]
        if status != old_status:
            stored = self.store.find("deployments", deployment["metadata"]["namespace"], deployment["metadata"]["name"])
            if stored is not None:
                stored = workloads.copy(stored)
                stored["status"] = status
                workloads.update(self.store, self.hub, "deployments", stored)
        return again

    def _progress(self, deployment: dict, new: dict | None, status: dict, old_status: dict, conditions: dict,
                  created: bool, now: str) -> float | None:
        """The Progressing condition (``syncRolloutStatus`` with ``progress.go``'s deadline)."""
        spec = deployment["spec"]
        name = new["metadata"]["name"] if new is not None else ""
        if spec.get("paused"):
            _set_condition(conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now)
            return None
        current = conditions.get("Progressing")
        if current is not None and current.get("reason") == "DeploymentPaused":
            _set_condition(conditions, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now)
            current = conditions["Progressing"]
        deadline = spec.get("progressDeadlineSeconds")
        wanted = spec["replicas"]
        complete = (status.get("updatedReplicas", 0) == wanted and status.get("replicas", 0) == wanted
                    and status.get("availableReplicas", 0) == wanted)
        if complete:
            _set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{name}" has successfully progressed.', now)
            return None
        if created:
            _set_condition(conditions, "Progressing", "True", "NewReplicaSetCreated",
                           f'Created new replica set "{name}"', now, update=True)
        elif current is None:
            _set_condition(conditions, "Progressing", "True", "FoundNewReplicaSet",
                           f'Found new replica set "{name}"', now, update=True)
        elif _progressed(status, old_status):
            _set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                           f'ReplicaSet "{name}" is progressing.', now, update=True)
        if deadline is None or conditions["Progressing"].get("reason") == "ProgressDeadlineExceeded":
            return None
        since = parse_time(conditions["Progressing"].get("lastUpdateTime")) or self._now()
        left = (since - self._now()).total_seconds() + deadline
        if left <= 0:
            _set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{name}" has timed out progressing.', now)
            return None
        return left + 1


def _progressed(status: dict, old: dict) -> bool:
    """``DeploymentProgressing``: more pods updated, ready or available, or fewer old ones."""
    def olds(s: dict) -> int:
        return s.get("replicas", 0) - s.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or olds(status) < olds(old)
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def _set_condition(conditions: dict, kind: str, status: str, reason: str, message: str, now: str,
                   update: bool = False) -> None:
    """``SetDeploymentCondition``: lastTransitionTime kept while the status stays; lastUpdateTime moved on change."""
    old = conditions.get(kind)
    if old is not None and old["status"] == status and old["reason"] == reason and not update:
        if old["message"] != message:
            old["message"] = message
        return
    transition = old["lastTransitionTime"] if old is not None and old["status"] == status else now
    conditions[kind] = {"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": transition,
                        "reason": reason, "message": message}


def controller(store: Store, hub: Hub, clock: Clock, _settings: Settings, _limiter: TokenBucket) -> DeploymentController:
    return DeploymentController(store, hub, clock)
