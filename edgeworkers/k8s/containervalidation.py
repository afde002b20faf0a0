"""Container validation: names, images, ports, env, mounts, resources, probes, lifecycle hooks and
security contexts of a pod's containers and init containers (``validation.go``'s container half)."""

from __future__ import annotations

import re
from typing import Any

from edgeworkers.k8s import naming
from edgeworkers.k8s.metavalidation import as_dict, as_int, as_list, invalid_each, items, nonnegative
from edgeworkers.k8s.quantity import canonical_quantity, parse_quantity
from edgeworkers.k8s.securityvalidation import validate_apparmor_profile, validate_seccomp_profile, validate_sysctls
from edgeworkers.k8s.status import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid_value,
    not_found_value,
    not_supported,
    required,
)
from edgeworkers.k8s.volumevalidation import (
    field_selector,
    local_descending_path,
    resource_selector,
    validate_quantity,
)

MAX_INT32 = 2**31 - 1
MORE_THAN_ONE_HANDLER = "may not specify more than 1 handler type"
INIT_CONTAINER_FORBIDS = "may not be set for init containers without restartPolicy=Always"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
URI_SCHEMES = ("HTTP", "HTTPS")
MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
RECURSIVE_READ_ONLY = ("Disabled", "Enabled", "IfPossible")
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)  # fmt: skip
_HTTP_HEADER_NAME = re.compile("[-A-Za-z0-9]+")
_HTTP_HEADER_ERROR = naming.regex_error(
    "a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+", "X-Header-Name"
)


# --- containers ---------------------------------------------------------------------------------------


def _ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(items(ports)):
        at = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            checks = naming.is_valid_port_name(name)
            if checks:
                errs += invalid_each(f"{at}.name", name, checks)
            elif name in names:
                errs.append(duplicate(f"{at}.name", name))
            else:
                names.add(name)
        container_port = as_int(port.get("containerPort")) or 0
        if not container_port:
            errs.append(required(f"{at}.containerPort"))
        else:
            errs += invalid_each(f"{at}.containerPort", container_port, naming.is_valid_port_num(container_port))
        host_port = as_int(port.get("hostPort")) or 0
        if host_port:
            errs += invalid_each(f"{at}.hostPort", host_port, naming.is_valid_port_num(host_port))
        protocol = port.get("protocol")
        if protocol == "":
            errs.append(required(f"{at}.protocol"))
        elif protocol is not None and protocol not in PROTOCOLS:
            errs.append(not_supported(f"{at}.protocol", protocol, PROTOCOLS))
    return errs


def _key_selector(selector: dict[str, Any], path: str) -> list[FieldError]:
    name, key = selector.get("name") or "", selector.get("key") or ""
    errs = invalid_each(f"{path}.name", name, naming.name_is_dns1123_subdomain(name))
    if not key:
        return errs + [required(f"{path}.key")]
    return errs + invalid_each(f"{path}.key", key, naming.is_config_map_key(key))


def _env(env: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, var in enumerate(items(env)):
        at = f"{path}[{i}]"
        name = var.get("name") or ""
        if not name:
            errs.append(required(f"{at}.name"))
        else:
            errs += invalid_each(f"{at}.name", name, naming.is_env_var_name(name))
        if var.get("valueFrom") is None:
            continue
        source, source_path, count = as_dict(var["valueFrom"]), f"{at}.valueFrom", 0
        if source.get("fieldRef") is not None:
            count += 1
            errs += field_selector(as_dict(source["fieldRef"]), f"{source_path}.fieldRef", ENV_FIELD_PATHS)
        if source.get("resourceFieldRef") is not None:
            count += 1
            errs += resource_selector(as_dict(source["resourceFieldRef"]), f"{source_path}.resourceFieldRef", False)
        for ref in ("configMapKeyRef", "secretKeyRef"):
            if source.get(ref) is not None:
                count += 1
                errs += _key_selector(as_dict(source[ref]), f"{source_path}.{ref}")
        if count == 0:
            detail = "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
            errs.append(invalid_value(source_path, "", detail))
        elif var.get("value"):
            errs.append(invalid_value(source_path, "", "may not be specified when `value` is not empty"))
        elif count > 1:
            errs.append(invalid_value(source_path, "", "may not have more than one field specified at a time"))
    return errs


def _env_from(env_from: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, source in enumerate(items(env_from)):
        at = f"{path}[{i}]"
        prefix = source.get("prefix") or ""
        if prefix:
            errs += invalid_each(f"{at}.prefix", prefix, naming.is_env_var_name(prefix))
        refs = [ref for ref in ("configMapRef", "secretRef") if source.get(ref) is not None]
        for ref in refs:
            name = as_dict(source[ref]).get("name") or ""
            if not name:
                errs.append(required(f"{at}.{ref}.name"))
            else:
                errs += invalid_each(f"{at}.{ref}.name", name, naming.name_is_dns1123_subdomain(name, True))
        if not refs:
            errs.append(invalid_value(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            errs.append(invalid_value(path, "", "may not have more than one field specified at a time"))
    return errs


def _volume_mounts(container: dict[str, Any], volumes: set[str], path: str) -> list[FieldError]:
    """Mount errors; like Kubernetes, subPath/propagation errors name the list (``volumeMounts.subPath``)."""
    errs: list[FieldError] = []
    mount_paths: set[str] = set()
    privileged = as_dict(container.get("securityContext")).get("privileged") is True
    for i, mount in enumerate(items(container.get("volumeMounts"))):
        at = f"{path}[{i}]"
        name, mount_path = mount.get("name") or "", mount.get("mountPath") or ""
        if not name:
            errs.append(required(f"{at}.name"))
        if name not in volumes:
            errs.append(not_found_value(f"{at}.name", name))
        if not mount_path:
            errs.append(required(f"{at}.mountPath"))
        if mount_path in mount_paths:
            errs.append(invalid_value(f"{at}.mountPath", mount_path, "must be unique"))
        mount_paths.add(mount_path)
        if mount.get("subPath"):
            errs += local_descending_path(f"{path}.subPath", str(mount["subPath"]))
        if mount.get("subPathExpr"):
            if mount.get("subPath"):
                detail = "subPathExpr and subPath are mutually exclusive"
                errs.append(invalid_value(f"{at}.subPathExpr", mount["subPathExpr"], detail))
            errs += local_descending_path(f"{path}.subPathExpr", str(mount["subPathExpr"]))
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            if propagation not in MOUNT_PROPAGATIONS:
                errs.append(not_supported(f"{path}.mountPropagation", propagation, MOUNT_PROPAGATIONS))
            if propagation == "Bidirectional" and not privileged:
                detail = "Bidirectional mount propagation is available only to privileged containers"
                errs.append(forbidden_field(f"{path}.mountPropagation", detail))
        errs += _recursive_read_only(mount, f"{path}.recursiveReadOnly")
    return errs


def _recursive_read_only(mount: dict[str, Any], path: str) -> list[FieldError]:
    mode = mount.get("recursiveReadOnly")
    if mode is None or mode == "Disabled":
        return []
    if mode not in RECURSIVE_READ_ONLY:
        return [not_supported(path, mode, RECURSIVE_READ_ONLY)]
    errs = (
        [] if mount.get("readOnly") is True else [forbidden_field(path, "may only be specified when readOnly is true")]
    )
    if mount.get("mountPropagation") not in (None, "None"):
        errs.append(forbidden_field(path, "may only be specified when mountPropagation is None or not specified"))
    return errs


def _resource_name(name: str, path: str) -> list[FieldError]:
    errs = invalid_each(path, name, naming.is_qualified_name(name))
    if errs:
        return errs
    if "/" not in name and name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        return [invalid_value(path, name, "must be a standard resource for containers")]
    return []


def _resources(resources: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    limits, requests = as_dict(resources.get("limits")), as_dict(resources.get("requests"))
    for name, amount in limits.items():
        errs += _resource_name(name, f"{path}.limits[{name}]") + validate_quantity(f"{path}.limits[{name}]", amount)
    for name, amount in requests.items():
        at = f"{path}.requests[{name}]"
        quantity_errs = validate_quantity(at, amount)
        errs += _resource_name(name, at) + quantity_errs
        if quantity_errs or name not in limits or validate_quantity(f"{path}.limits[{name}]", limits[name]):
            continue
        if parse_quantity(amount) > parse_quantity(limits[name]):
            limit = canonical_quantity(limits[name])
            detail = f"must be less than or equal to {name} limit of {limit}"
            errs.append(invalid_value(f"{path}.requests", canonical_quantity(amount), detail))
    return errs


def _port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if isinstance(port, str):
        return invalid_each(path, port, naming.is_valid_port_name(port))
    number = as_int(port) or 0
    return invalid_each(path, number, naming.is_valid_port_num(number))


def _handler(handler: dict[str, Any], path: str, kinds: tuple[str, ...], grace: int | None) -> list[FieldError]:
    errs: list[FieldError] = []
    present = [kind for kind in kinds if handler.get(kind) is not None]
    for kind in present:
        action, at = as_dict(handler[kind]), f"{path}.{kind}"
        if kind != present[0]:
            errs.append(forbidden_field(at, MORE_THAN_ONE_HANDLER))
        elif kind == "exec":
            if not as_list(action.get("command")):
                errs.append(required(f"{at}.command"))
        elif kind == "httpGet":
            errs += _http_get(action, at)
        elif kind == "tcpSocket":
            errs += _port_num_or_name(action.get("port"), f"{at}.port")
        elif kind == "grpc":
            errs += _port_num_or_name(as_int(action.get("port")) or 0, f"{at}.port")
        elif kind == "sleep":
            seconds = as_int(action.get("seconds")) or 0
            if grace is not None and (seconds <= 0 or seconds > grace):
                detail = f"must be greater than 0 and less than terminationGracePeriodSeconds ({grace})"
                errs.append(invalid_value(at, seconds, detail))
    if not present:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _http_get(action: dict[str, Any], path: str) -> list[FieldError]:
    errs = [] if action.get("path") else [required(f"{path}.path")]
    errs += _port_num_or_name(action.get("port"), f"{path}.port")
    scheme = action.get("scheme", "HTTP")
    if scheme not in URI_SCHEMES:
        errs.append(not_supported(f"{path}.scheme", scheme, URI_SCHEMES))
    for header in items(action.get("httpHeaders")):
        name = str(header.get("name") or "")
        if not _HTTP_HEADER_NAME.fullmatch(name):
            errs.append(invalid_value(f"{path}.httpHeaders", name, _HTTP_HEADER_ERROR))
    return errs


def _probe(probe: dict[str, Any], path: str, kind: str, grace: int | None) -> list[FieldError]:
    errs = _handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"), grace)
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs += nonnegative(f"{path}.{name}", probe.get(name))
    probe_grace = as_int(probe.get("terminationGracePeriodSeconds"))
    if probe_grace is not None and probe_grace <= 0:
        errs.append(invalid_value(f"{path}.terminationGracePeriodSeconds", probe_grace, "must be greater than 0"))
    threshold = as_int(probe.get("successThreshold"))
    if kind != "readinessProbe" and threshold is not None and threshold != 1:
        errs.append(invalid_value(f"{path}.successThreshold", threshold, "must be 1"))
    if kind == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
        detail = "must not be set for readinessProbes"
        errs.append(
            invalid_value(f"{path}.terminationGracePeriodSeconds", probe["terminationGracePeriodSeconds"], detail)
        )
    return errs


def _probes_and_lifecycle(container: dict[str, Any], path: str, grace: int | None) -> list[FieldError]:
    errs: list[FieldError] = []
    lifecycle = container.get("lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            if as_dict(lifecycle).get(hook) is not None:
                kinds = ("exec", "httpGet", "tcpSocket", "sleep")
                errs += _handler(as_dict(lifecycle[hook]), f"{path}.lifecycle.{hook}", kinds, grace)
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        if container.get(kind) is not None:
            errs += _probe(as_dict(container[kind]), f"{path}.{kind}", kind, grace)
    return errs


def _id_range(path: str, value: Any) -> list[FieldError]:
    number = as_int(value)
    if number is None or 0 <= number <= MAX_INT32:
        return []
    return [invalid_value(path, number, naming.inclusive_range_error(0, MAX_INT32))]


def _security_context(context: dict[str, Any], path: str) -> list[FieldError]:
    errs = _id_range(f"{path}.runAsUser", context.get("runAsUser")) + _id_range(
        f"{path}.runAsGroup", context.get("runAsGroup")
    )
    if context.get("allowPrivilegeEscalation") is False:
        if context.get("privileged") is True:
            detail = "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
            errs.append(invalid_value(path, context, detail))
        if "CAP_SYS_ADMIN" in as_list(as_dict(context.get("capabilities")).get("add")):
            detail = "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"
            errs.append(invalid_value(path, context, detail))
    return errs + _profiles(context, path)


def _profiles(context: dict[str, Any], path: str) -> list[FieldError]:
    return validate_seccomp_profile(context.get("seccompProfile"), f"{path}.seccompProfile") + \
        validate_apparmor_profile(context.get("appArmorProfile"), f"{path}.appArmorProfile")


def validate_pod_security_context(context: dict[str, Any], path: str) -> list[FieldError]:
    errs = _id_range(f"{path}.runAsUser", context.get("runAsUser")) + _id_range(
        f"{path}.runAsGroup", context.get("runAsGroup")
    )
    errs += _id_range(f"{path}.fsGroup", context.get("fsGroup"))
    for i, group in enumerate(as_list(context.get("supplementalGroups"))):
        errs += _id_range(f"{path}.supplementalGroups[{i}]", group)
    return errs + _profiles(context, path) + validate_sysctls(context.get("sysctls"), f"{path}.sysctls")


def _container_common(container: dict[str, Any], path: str, volumes: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    name = container.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs += invalid_each(f"{path}.name", name, naming.is_dns1123_label(name))
    if not container.get("image"):
        errs.append(required(f"{path}.image"))
    policy = container.get("terminationMessagePolicy")
    if policy == "":
        errs.append(required(f"{path}.terminationMessagePolicy"))
    elif policy is not None and policy not in TERMINATION_MESSAGE_POLICIES:
        errs.append(not_supported(f"{path}.terminationMessagePolicy", policy, TERMINATION_MESSAGE_POLICIES))
    errs += _ports(container.get("ports"), f"{path}.ports")
    errs += _env(container.get("env"), f"{path}.env")
    errs += _env_from(container.get("envFrom"), f"{path}.envFrom")
    errs += _volume_mounts(container, volumes, f"{path}.volumeMounts")
    pull = container.get("imagePullPolicy")
    if pull == "":
        errs.append(required(f"{path}.imagePullPolicy"))
    elif pull is not None and pull not in PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", pull, PULL_POLICIES))
    errs += _resources(as_dict(container.get("resources")), f"{path}.resources")
    return errs + _security_context(as_dict(container.get("securityContext")), f"{path}.securityContext")


def _host_port_conflicts(containers: list[dict[str, Any]], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        for j, port in enumerate(items(container.get("ports"))):
            host_port = as_int(port.get("hostPort")) or 0
            if not host_port:
                continue
            key = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{host_port}"
            if key in seen:
                errs.append(duplicate(f"{path}[{i}].ports[{j}].hostPort", key))
            seen.add(key)
    return errs


def validate_containers(spec: dict[str, Any], volumes: set[str], grace: int | None) -> list[FieldError]:
    containers = items(spec.get("containers"))
    if not containers:
        return [required("spec.containers")]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, container in enumerate(containers):
        at = f"spec.containers[{i}]"
        errs += _container_common(container, at, volumes)
        name = container.get("name") or ""
        if name in names:
            errs.append(duplicate(f"{at}.name", name))
        names.add(name)
        errs += _probes_and_lifecycle(container, at, grace)
        if container.get("restartPolicy") is not None:
            errs.append(forbidden_field(f"{at}.restartPolicy", "may not be set for non-init containers"))
    return errs + _host_port_conflicts(containers, "spec.containers")


def validate_init_containers(spec: dict[str, Any], volumes: set[str], grace: int | None) -> list[FieldError]:
    errs: list[FieldError] = []
    names = {c.get("name") or "" for c in items(spec.get("containers"))}
    for i, container in enumerate(items(spec.get("initContainers"))):
        at = f"spec.initContainers[{i}]"
        errs += _container_common(container, at, volumes)
        restart = container.get("restartPolicy")
        if restart is not None and restart != "Always":
            errs.append(not_supported(f"{at}.restartPolicy", restart, ("Always",)))
        name = container.get("name") or ""
        if name in names:
            errs.append(duplicate(f"{at}.name", name))
        elif name:
            names.add(name)
        # Init containers run one by one, so Kubernetes checks each alone (and names it index 0).
        errs += _host_port_conflicts([container], "spec.initContainers")
        if restart == "Always":
            errs += _probes_and_lifecycle(container, at, grace)
        else:
            for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(field) is not None:
                    errs.append(forbidden_field(f"{at}.{field}", INIT_CONTAINER_FORBIDS))
        if as_list(container.get("resizePolicy")):
            errs.append(
                invalid_value(f"{at}.resizePolicy", container["resizePolicy"], "must not be set for init containers")
            )
    return errs


# Fields an ephemeral container may not set, in the order of kube's EphemeralContainerCommon (its
# allowedEphemeralContainerFields): it must not be relied upon for the pod's own service.
EPHEMERAL_FORBIDDEN_FIELDS = ("ports", "resources", "resizePolicy", "restartPolicy", "livenessProbe",
                              "readinessProbe", "startupProbe", "lifecycle")  # fmt: skip
EPHEMERAL_FORBIDS = "cannot be set for an Ephemeral Container"


def validate_ephemeral_containers(spec: dict[str, Any], volumes: set[str]) -> list[FieldError]:
    """kube's ``validateEphemeralContainers``: common container rules, names unique across every kind of container,
    ``targetContainerName`` naming a regular or init container, no field of the pod's own service, no subPath."""
    errs: list[FieldError] = []
    others = {c.get("name") or "" for key in ("containers", "initContainers") for c in items(spec.get(key))}
    names = set(others)
    for i, container in enumerate(items(spec.get("ephemeralContainers"))):
        at = f"spec.ephemeralContainers[{i}]"
        errs += _container_common(container, at, volumes)
        name = container.get("name") or ""
        if name in names:
            errs.append(duplicate(f"{at}.name", name))
        else:
            names.add(name)
        target = container.get("targetContainerName") or ""
        if target and target not in others:
            errs.append(not_found_value(f"{at}.targetContainerName", target))
        errs += [forbidden_field(f"{at}.{field}", EPHEMERAL_FORBIDS) for field in EPHEMERAL_FORBIDDEN_FIELDS
                 if container.get(field) not in (None, {}, [], "")]
        for j, mount in enumerate(items(container.get("volumeMounts"))):
            errs += [forbidden_field(f"{at}.volumeMounts[{j}].{field}", EPHEMERAL_FORBIDS)
                     for field in ("subPath", "subPathExpr") if mount.get(field)]
    return errs
