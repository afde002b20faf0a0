"""What the workload kinds' validation shares (kube's ``ValidateLabelSelector``, ``ValidatePodTemplateSpec`` and
``ValidatePodTemplateSpecForReplicaSet``): label selectors and pod templates, with kube's field paths and wording.

Whether a selector matches the template's labels is the caller's to say (selectors are matched in the cloud layer).
"""
from __future__ import annotations

from typing import Any

from edgeworkers.k8s import naming
from edgeworkers.k8s.metavalidation import as_dict, invalid_each, items, validate_annotations, validate_labels
from edgeworkers.k8s.podvalidation import validate_pod_spec
from edgeworkers.k8s.status import FieldError, StringMap, forbidden_field, invalid_value, not_supported, required

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
SELECTOR_MISMATCH = "`selector` does not match template `labels`"


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """apimachinery's ``ValidateLabelSelector``: expressions well formed, matchLabels valid labels."""
    selector = as_dict(selector)
    errs: list[FieldError] = []
    for i, expression in enumerate(items(selector.get("matchExpressions"))):
        at, operator, values = f"{path}.matchExpressions[{i}]", expression.get("operator"), expression.get("values")
        if operator in ("In", "NotIn") and not values:
            errs.append(required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist") and values:
            errs.append(forbidden_field(f"{at}.values", "may not be specified when `operator` is 'Exists' or "
                                                         "'DoesNotExist'"))
        elif operator not in SELECTOR_OPERATORS:
            errs.append(invalid_value(f"{at}.operator", operator, "not a valid selector operator"))
        key = str(expression.get("key") or "")
        errs += invalid_each(f"{at}.key", key, naming.is_qualified_name(key))
    errs += validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    return errs


def validate_pod_template(template: Any, path: str) -> list[FieldError]:
    """``ValidatePodTemplateSpec``: the template's labels and annotations, and its spec as a pod's (under ``path``)."""
    template = as_dict(template)
    meta, spec = as_dict(template.get("metadata")), as_dict(template.get("spec"))
    errs = validate_labels(meta.get("labels"), f"{path}.labels")  # kube's paths leave out "metadata" here
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += [e._replace(field=f"{path}.{e.field}") for e in validate_pod_spec(spec)]
    if spec.get("ephemeralContainers"):
        errs.append(forbidden_field(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod "
                                                                       "template"))
    return errs


def validate_replicated_template(template: Any, selector_matches: bool, path: str, kind: str) -> list[FieldError]:
    """``ValidatePodTemplateSpecForReplicaSet`` (and ``ForRC``): a template whose labels the selector matches (the
    caller says), a valid pod template that restarts ``Always`` and has no ``activeDeadlineSeconds``."""
    if not isinstance(template, dict) or not template:
        return [required(path)]
    errs: list[FieldError] = []
    if not selector_matches:
        labels = StringMap(as_dict(as_dict(template.get("metadata")).get("labels")))
        errs.append(invalid_value(f"{path}.metadata.labels", labels, SELECTOR_MISMATCH))
    errs += validate_pod_template(template, path)
    spec = as_dict(template.get("spec"))
    if spec.get("restartPolicy") != "Always":
        errs.append(not_supported(f"{path}.spec.restartPolicy", spec.get("restartPolicy"), ("Always",)))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden_field(f"{path}.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not "
                                                                          "Supported"))
    return errs
