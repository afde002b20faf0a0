"""Pod validation: a port of ``ValidatePodCreate`` / ``ValidatePodUpdate`` from Kubernetes'
``pkg/apis/core/validation/validation.go``, on the defaulted JSON of a pod.

Error order, field paths and wording follow Kubernetes, including its quirks, so that kubectl prints
the same lines it would print against a real cluster. Volumes and containers have modules of their own.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from edgeworkers.constants import ANNOTATION_MIRROR
from edgeworkers.k8s import naming
from edgeworkers.k8s.containervalidation import (
    validate_containers,
    validate_ephemeral_containers,
    validate_init_containers,
    validate_pod_security_context,
)
from edgeworkers.k8s.metavalidation import (
    as_dict,
    as_int,
    as_list,
    invalid_each,
    items,
    nonnegative,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from edgeworkers.k8s.securityvalidation import validate_host_aliases
from edgeworkers.k8s.status import FieldError, duplicate, forbidden_field, invalid_value, not_supported, required
from edgeworkers.k8s.volumevalidation import validate_volumes

MAX_INT32 = 2**31 - 1
RESTART_POLICIES = ("Always", "Never", "OnFailure")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
POD_UPDATE_FORBIDDEN = "pod updates may not change fields other than " + ",".join(UPDATABLE_POD_FIELDS)
_IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


# --- pod spec -----------------------------------------------------------------------------------------


def _host_network_ports(spec: dict[str, Any]) -> list[FieldError]:
    if spec.get("hostNetwork") is not True:
        return []
    errs: list[FieldError] = []
    for i, container in enumerate(items(spec.get("containers"))):
        for j, port in enumerate(items(container.get("ports"))):
            host_port, container_port = as_int(port.get("hostPort")) or 0, as_int(port.get("containerPort")) or 0
            if host_port != container_port:
                detail = "must match `containerPort` when `hostNetwork` is true"
                errs.append(invalid_value(f"spec.containers[{i}].ports[{j}].hostPort", host_port, detail))
    return errs


def _dns_config(spec: dict[str, Any]) -> list[FieldError]:
    config, path = spec.get("dnsConfig"), "spec.dnsConfig"
    if spec.get("dnsPolicy") == "None":
        if config is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(as_dict(config).get("nameservers")):
            detail = "must provide at least one DNS nameserver when `dnsPolicy` is None"
            return [required(f"{path}.nameservers", detail)]
    if config is None:
        return []
    config = as_dict(config)
    errs: list[FieldError] = []
    nameservers = as_list(config.get("nameservers"))
    if len(nameservers) > 3:
        errs.append(invalid_value(f"{path}.nameservers", nameservers, "must not have more than 3 nameservers"))
    for i, server in enumerate(nameservers):
        try:
            ipaddress.ip_address(str(server))
        except ValueError:
            errs.append(invalid_value(f"{path}.nameservers[{i}]", server, _IP_ERROR))
    searches = [str(s) for s in as_list(config.get("searches"))]
    if len(searches) > 32:
        errs.append(invalid_value(f"{path}.searches", searches, "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        detail = "must not have more than 2048 characters (including spaces) in the search list"
        errs.append(invalid_value(f"{path}.searches", searches, detail))
    for i, search in enumerate(searches):
        search = search.removesuffix(".")
        errs += invalid_each(f"{path}.searches[{i}]", search, naming.is_dns1123_subdomain(search))
    for i, option in enumerate(items(config.get("options"))):
        if not option.get("name"):
            errs.append(required(f"{path}.options[{i}]", "must not be empty"))
    return errs


def _tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, toleration in enumerate(items(tolerations)):
        at = f"{path}[{i}]"
        key, operator = toleration.get("key") or "", toleration.get("operator") or ""
        value, effect = toleration.get("value") or "", toleration.get("effect") or ""
        if key:
            errs += invalid_each(f"{at}.key", key, naming.is_qualified_name(key))
        if not key and operator != "Exists":
            detail = 'operator must be Exists when `key` is empty, which means "match all values and all keys"'
            errs.append(invalid_value(f"{at}.operator", operator, detail))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            detail = "effect must be 'NoExecute' when `tolerationSeconds` is set"
            errs.append(invalid_value(f"{at}.effect", effect, detail))
        if operator in ("Equal", ""):
            messages = naming.is_valid_label_value(str(value))
            if messages:
                errs.append(invalid_value(f"{at}.operator", value, ";".join(messages)))
        elif operator == "Exists":
            if value:
                errs.append(
                    invalid_value(f"{at}.operator", toleration, "value must be empty when `operator` is 'Exists'")
                )
        else:
            errs.append(not_supported(f"{at}.operator", operator, TOLERATION_OPERATORS))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(f"{at}.effect", effect, TAINT_EFFECTS))
    return errs


def _named_gates(gates: Any, path: str, key: str, unique: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, gate in enumerate(items(gates)):
        name = str(gate.get(key) or "")
        at = f"{path}[{i}].{key}" if key == "conditionType" else f"{path}[{i}]"
        errs += invalid_each(at, name, naming.is_qualified_name(name))
        if unique and name in seen:
            errs.append(duplicate(at, name))
        seen.add(name)
    return errs


def validate_pod_spec(spec: dict[str, Any]) -> list[FieldError]:
    """``ValidatePodSpec`` in Kubernetes' order."""
    spec = as_dict(spec)
    grace = as_int(spec.get("terminationGracePeriodSeconds"))
    errs = nonnegative("spec.terminationGracePeriodSeconds", grace)
    volumes, volume_errs = validate_volumes(spec.get("volumes"))
    errs += volume_errs
    errs += validate_containers(spec, volumes, grace)
    errs += validate_init_containers(spec, volumes, grace)
    errs += validate_ephemeral_containers(spec, volumes)
    errs += _host_network_ports(spec)
    restart, dns = spec.get("restartPolicy"), spec.get("dnsPolicy")
    if restart == "":
        errs.append(required("spec.restartPolicy"))
    elif restart is not None and restart not in RESTART_POLICIES:
        errs.append(not_supported("spec.restartPolicy", restart, RESTART_POLICIES))
    if dns == "":
        errs.append(required("spec.dnsPolicy"))
    elif dns is not None and dns not in DNS_POLICIES:
        errs.append(not_supported("spec.dnsPolicy", dns, DNS_POLICIES))
    errs += validate_labels(spec.get("nodeSelector"), "spec.nodeSelector")
    errs += validate_pod_security_context(as_dict(spec.get("securityContext")), "spec.securityContext")
    errs += _dns_config(spec)
    errs += validate_host_aliases(spec.get("hostAliases"), "spec.hostAliases")
    errs += _named_gates(spec.get("readinessGates"), "spec.readinessGates", "conditionType", unique=False)
    errs += _named_gates(spec.get("schedulingGates"), "spec.schedulingGates", "name", unique=True)
    for key in ("serviceAccountName", "nodeName"):
        if spec.get(key):
            errs += invalid_each(f"spec.{key}", spec[key], naming.is_dns1123_subdomain(str(spec[key])))
    deadline = as_int(spec.get("activeDeadlineSeconds"))
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errs.append(invalid_value("spec.activeDeadlineSeconds", deadline, naming.inclusive_range_error(1, MAX_INT32)))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            errs += invalid_each(f"spec.{key}", spec[key], naming.is_dns1123_label(str(spec[key])))
    errs += _tolerations(spec.get("tolerations"), "spec.tolerations")
    if spec.get("priorityClassName"):
        name = str(spec["priorityClassName"])
        errs += invalid_each("spec.priorityClassName", name, naming.is_dns1123_subdomain(name))
    preemption = spec.get("preemptionPolicy")
    if preemption is not None and preemption not in PREEMPTION_POLICIES:
        errs.append(not_supported("spec.preemptionPolicy", preemption, PREEMPTION_POLICIES))
    return errs


def validate_pod(obj: dict[str, Any]) -> list[FieldError]:
    """All of Kubernetes' create-time errors for a pod; fields that defaulting fills in may be absent."""
    obj = as_dict(obj)
    return validate_object_meta(as_dict(obj.get("metadata")), namespaced=True) + validate_pod_spec(
        as_dict(obj.get("spec"))
    )


# --- updates ------------------------------------------------------------------------------------------


def _only_added_tolerations(old: list[Any], new: list[Any]) -> bool:
    def ignoring_seconds(toleration: Any) -> Any:
        return {k: v for k, v in as_dict(toleration).items() if k != "tolerationSeconds"}

    return all(any(ignoring_seconds(o) == ignoring_seconds(n) for n in new) for o in old)


def _with_image_of(container: Any, old: Any) -> dict[str, Any]:
    result = {k: v for k, v in as_dict(container).items() if k != "image"}
    if "image" in as_dict(old):
        result["image"] = old["image"]
    return result


def _spec_without_mutable_fields(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """``new`` with every field a pod update may change set back to ``old``'s value."""
    munged = dict(new)
    for key in ("containers", "initContainers"):
        if key in new:
            munged[key] = [_with_image_of(n, o) for n, o in zip(as_list(new[key]), as_list(old.get(key)))]
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(key, None)
        if key in old:
            munged[key] = old[key]
    old_grace = as_int(old.get("terminationGracePeriodSeconds"))
    if old_grace is not None and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def validate_pod_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """A pod update may change images, lower activeDeadlineSeconds and add tolerations; nothing else in spec."""
    old, new = as_dict(old), as_dict(new)
    errs = validate_object_meta_update(as_dict(old.get("metadata")), as_dict(new.get("metadata"))) + validate_pod(new)
    old_spec, new_spec = as_dict(old.get("spec")), as_dict(new.get("spec"))
    for key in ("containers", "initContainers"):
        if len(as_list(old_spec.get(key))) != len(as_list(new_spec.get(key))):
            return errs + [forbidden_field(f"spec.{key}", "pod updates may not add or remove containers")]
    old_deadline = as_int(old_spec.get("activeDeadlineSeconds"))
    new_deadline = as_int(new_spec.get("activeDeadlineSeconds"))
    if new_deadline is not None and old_deadline is not None and old_deadline < new_deadline:
        detail = "must be less than or equal to previous value"
        return errs + [invalid_value("spec.activeDeadlineSeconds", new_deadline, detail)]
    if new_deadline is None and old_deadline is not None:
        detail = "must not update from a positive integer to nil value"
        errs.append(invalid_value("spec.activeDeadlineSeconds", None, detail))
    if not _only_added_tolerations(as_list(old_spec.get("tolerations")), as_list(new_spec.get("tolerations"))):
        detail = "existing toleration can not be modified except its tolerationSeconds"
        errs.append(forbidden_field("spec.tolerations", detail))
    if _spec_without_mutable_fields(new_spec, old_spec) != old_spec:
        errs.append(forbidden_field("spec", POD_UPDATE_FORBIDDEN))
    return errs



def validate_pod_ephemeral_containers_update(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """kube's ``ValidatePodEphemeralContainersUpdate`` (the ``ephemeralcontainers`` subresource): the new pod is valid,
    and ephemeral containers are only added, never removed or changed; a static (mirror) pod takes none."""
    old, new = as_dict(old), as_dict(new)
    errs = validate_object_meta_update(as_dict(old.get("metadata")), as_dict(new.get("metadata"))) + validate_pod(new)
    if ANNOTATION_MIRROR in as_dict(as_dict(old.get("metadata")).get("annotations")):
        return [forbidden_field("", "static pods do not support ephemeral containers")]
    added = {str(c.get("name")): c for c in items(as_dict(new.get("spec")).get("ephemeralContainers"))}
    for container in items(as_dict(old.get("spec")).get("ephemeralContainers")):
        name = str(container.get("name"))
        if name not in added:
            errs.append(forbidden_field("spec.ephemeralContainers",
                                        f'existing ephemeral containers "{name}" may not be removed'))
        elif added[name] != container:
            errs.append(forbidden_field(f"spec.ephemeralContainers[{name}]",
                                        f'existing ephemeral containers "{name}" may not be changed'))
    return errs
