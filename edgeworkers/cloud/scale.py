"""The ``/scale`` subresource of Deployments, ReplicaSets and ReplicationControllers: an autoscaling/v1 ``Scale``
(what ``kubectl scale`` reads and patches), kept as kube-apiserver's scale REST storage keeps it.

Only ``spec.replicas`` is written through it; the rest is read from the workload.
"""
from __future__ import annotations

from edgeworkers.cloud.selectors import from_label_selector
from edgeworkers.k8s import status

SCALE_KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


def workload_selector(obj: dict) -> dict | None:
    """The workload's selector as a ``LabelSelector`` object (a ReplicationController's is a plain label map)."""
    selector = (obj.get("spec") or {}).get("selector")
    if obj.get("kind") == "ReplicationController" or (isinstance(selector, dict) and selector and not (
            "matchLabels" in selector or "matchExpressions" in selector)):
        return {"matchLabels": selector or {}}
    return selector


def to_scale(obj: dict) -> dict:
    meta = obj["metadata"]
    selector = from_label_selector(workload_selector(obj))
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {key: meta[key] for key in SCALE_KEPT_METADATA if key in meta},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   **({"selector": str(selector)} if selector is not None else {})},
    }


def scaled(obj: dict, scale: object) -> dict:
    """A copy of ``obj`` with the replicas ``scale`` (a Scale body) asks for; an invalid Scale is a 422/400."""
    if not isinstance(scale, dict) or scale.get("kind") not in (None, "Scale"):
        raise status.bad_request("the body must be an autoscaling/v1 Scale")
    name = obj["metadata"]["name"]
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise status.invalid("Scale", name, [status.invalid_value(
            "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
    given = scale.get("metadata") or {}
    new = {**obj, "metadata": dict(obj["metadata"]), "spec": {**(obj.get("spec") or {}), "replicas": replicas}}
    if given.get("resourceVersion"):  # a precondition, as on any update
        new["metadata"]["resourceVersion"] = given["resourceVersion"]
    return new
