"""What the workload controllers (ReplicaSet, Deployment, DaemonSet, Job) share: controller references, pods made from
a template, pod states as kube's ``controller_utils`` and ``podutil`` read them, and writes published to the hub."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import orjson

from edgeworkers.cloud.resources import RESOURCES
from edgeworkers.cloud.scale import workload_selector
from edgeworkers.cloud.selectors import LabelSelector, from_label_selector
from edgeworkers.cloud.serviceaccounts import with_account_pull_secrets
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.tolerations import default_toleration_seconds
from edgeworkers.cloud.watch import Hub
from edgeworkers.k8s import pod as pod_model
from edgeworkers.k8s.printers import parse_time

TERMINAL = ("Succeeded", "Failed")


def copy(obj: dict) -> dict:
    return orjson.loads(orjson.dumps(obj))


# -- owners ------------------------------------------------------------------------------------------------------

def controller_ref(resource: str, owner: dict) -> dict:
    """The ownerReference a controller of ``resource`` ("replicasets") puts on what it makes."""
    kind = RESOURCES[resource]
    return {"apiVersion": kind.api_version, "kind": kind.kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: dict) -> dict | None:
    """The ownerReference with ``controller: true``, if any."""
    return next((ref for ref in obj["metadata"].get("ownerReferences") or []
                 if isinstance(ref, dict) and ref.get("controller")), None)


def controlled_by(obj: dict, owner: dict) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


def int_annotation(obj: dict, key: str) -> int:
    """The integer an annotation holds (a revision, a deletion cost); 0 when absent or not an integer, as kube reads
    them."""
    try:
        return int((obj["metadata"].get("annotations") or {}).get(key, "0"))
    except ValueError:
        return 0

def selector_of(obj: dict) -> LabelSelector | None:
    """``spec.selector`` as a selector (None selects nothing; a ReplicationController's is a plain label map);
    validation keeps malformed ones out of the store."""
    try:
        return from_label_selector(workload_selector(obj))
    except ValueError:
        return None


def template_hash(template: dict, collisions: int = 0) -> str:
    """A short stable hash of a pod template (kube's ``pod-template-hash`` / ``controller-revision-hash`` role)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")) + (f"/{collisions}" if collisions else "")
    return hashlib.sha256(data.encode()).hexdigest()[:10]


# -- pods --------------------------------------------------------------------------------------------------------

def pod_from_template(resource: str, owner: dict, template: dict, generate_name: str, *,
                      labels: dict | None = None, spec: dict | None = None) -> dict:
    """A new pod of ``owner`` (of ``resource``) from its pod ``template``: the template's labels (plus ``labels``),
    annotations and spec (``spec`` replaces it: a DaemonSet's node affinity, say), controlled by ``owner``."""
    meta = template.get("metadata") or {}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "generateName": generate_name, "namespace": owner["metadata"]["namespace"],
            "labels": {**(meta.get("labels") or {}), **(labels or {})},
            **({"annotations": dict(meta["annotations"])} if meta.get("annotations") else {}),
            "ownerReferences": [controller_ref(resource, owner)],
        },
        "spec": copy(spec if spec is not None else template.get("spec") or {}),
    }


def default_template(template: object) -> None:
    """Give a pod template (in place) the defaults a pod of it gets (``SetDefaults_PodSpec`` and friends)."""
    if isinstance(template, dict) and isinstance(template.get("spec") or {}, dict):
        template["spec"] = pod_model.default_pod({"spec": template.get("spec") or {}})["spec"]


def is_active(pod: dict) -> bool:
    """Not finished and not being deleted (kube's ``controller.IsPodActive``)."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL and not pod["metadata"].get("deletionTimestamp")


def ready_since(pod: dict) -> dt.datetime | None:
    """When the pod's Ready condition last turned True, or None when it is not Ready."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") != "True":
                return None
            return parse_time(condition.get("lastTransitionTime")) or dt.datetime.min.replace(tzinfo=dt.UTC)
    return None


def is_ready(pod: dict) -> bool:
    return ready_since(pod) is not None


def is_available(pod: dict, min_ready_s: int, now: dt.datetime) -> bool:
    """Ready for at least ``min_ready_s`` (kube's ``podutil.IsPodAvailable``)."""
    since = ready_since(pod)
    return since is not None and (min_ready_s == 0 or (now - since).total_seconds() >= min_ready_s)


# -- writes ------------------------------------------------------------------------------------------------------

def create_pod(store: Store, hub: Hub, pod: dict) -> dict:
    """Store a new pod with the defaults and admission an API request's pod gets; the stored pod."""
    pod = default_toleration_seconds(pod_model.default_pod(pod))
    pod["status"] = {"phase": "Pending"}
    event = store.create("pods", with_account_pull_secrets(store, pod))
    hub.publish(event)
    return event.object


def delete_pod(store: Store, hub: Hub, pod: dict) -> None:
    """Delete a pod as ``kubectl delete`` would: a pod on a node gracefully (its node kills it, then deletes it)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if meta.get("deletionTimestamp"):
        return
    if spec.get("nodeName") and grace > 0:
        hub.publish(store.begin_deletion("pods", meta["namespace"], meta["name"], grace))
    else:
        hub.publish(store.delete("pods", meta["namespace"], meta["name"]))


def create(store: Store, hub: Hub, resource: str, obj: dict) -> dict:
    event = store.create(resource, obj)
    hub.publish(event)
    return event.object


def update(store: Store, hub: Hub, resource: str, obj: dict) -> dict:
    """Store a changed object (its resourceVersion a precondition); the stored one."""
    event = store.update(resource, obj)
    hub.publish(event)
    return event.object if event is not None else obj


def delete(store: Store, hub: Hub, resource: str, obj: dict) -> None:
    meta = obj["metadata"]
    hub.publish(store.delete(resource, meta.get("namespace", ""), meta["name"]))
