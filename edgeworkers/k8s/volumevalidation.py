"""Volume validation: the ``volumes`` of a pod spec, the downward API's field and resource selectors,
and the path rules Kubernetes applies to files a volume projects (``validation.go``'s volume half).

Kubernetes' quirks are kept so messages match: a surplus downwardAPI source is reported at
``downwarAPI``, and a downward API file's errors name the source, not the item.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from edgeworkers.k8s import naming
from edgeworkers.k8s.metavalidation import NEGATIVE, as_dict, as_int, invalid_each, items
from edgeworkers.k8s.quantity import canonical_quantity, parse_quantity
from edgeworkers.k8s.status import FieldError, duplicate, forbidden_field, invalid_value, not_supported, required

FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"
MORE_THAN_ONE_VOLUME = "may not specify more than 1 volume type"
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid")
DOWNWARD_API_LABELS = (
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName", "status.phase",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)  # fmt: skip
RESOURCE_FIELD_PATHS = (
    "limits.cpu", "limits.ephemeral-storage", "limits.memory",
    "requests.cpu", "requests.ephemeral-storage", "requests.memory",
)  # fmt: skip
_BYTE_DIVISORS = {"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
_BYTE_DIVISOR_LIST = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei"
_DIVISORS = {  # resource -> (allowed canonical divisors, message)
    "cpu": ({"1m", "1"}, "only divisor's values 1m and 1 are supported with the cpu resource"),
    "memory": (_BYTE_DIVISORS, f"only divisor's values {_BYTE_DIVISOR_LIST} are supported with the memory resource"),
    "ephemeral-storage": (
        _BYTE_DIVISORS,
        f"only divisor's values {_BYTE_DIVISOR_LIST} are supported with the local ephemeral storage resource",
    ),
}
VOLUME_SOURCE_ORDER = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"), ("cinder", "cinder"), ("cephfs", "cephFS"),
    ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"), ("scaleIO", "scaleIO"),
    ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
)  # fmt: skip


# --- quantities and paths -----------------------------------------------------------------------------


def validate_quantity(path: str, value: Any) -> list[FieldError]:
    """A malformed quantity is a decoding error in Kubernetes; it is reported here as an invalid value."""
    try:
        amount = parse_quantity(value)
    except (ValueError, TypeError) as exc:
        return [invalid_value(path, value, str(exc))]
    return [invalid_value(path, canonical_quantity(value), NEGATIVE)] if amount < 0 else []


def _no_backsteps(path: str, target: str) -> list[FieldError]:
    return [invalid_value(path, target, "must not contain '..'")] if ".." in target.split("/") else []


def local_descending_path(path: str, target: str) -> list[FieldError]:
    errs = [invalid_value(path, target, "must be a relative path")] if posixpath.isabs(target) else []
    return errs + _no_backsteps(path, target)


def _local_non_reserved_path(path: str, target: str) -> list[FieldError]:
    errs = local_descending_path(path, target)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid_value(path, target, "must not start with '..'"))
    return errs


def _mode(path: str, mode: Any) -> list[FieldError]:
    number = as_int(mode)
    return [invalid_value(path, number, FILE_MODE)] if number is not None and not 0 <= number <= 0o777 else []


# --- volumes ------------------------------------------------------------------------------------------


def _key_to_path(item: dict[str, Any], path: str) -> list[FieldError]:
    errs = [] if item.get("key") else [required(f"{path}.key")]
    if not item.get("path"):
        errs.append(required(f"{path}.path"))
    errs += _local_non_reserved_path(f"{path}.path", str(item.get("path") or ""))
    return errs + _mode(f"{path}.mode", item.get("mode"))


def _split_subscript(field_path: str) -> tuple[str, str] | None:
    """``metadata.labels['app']`` -> ``("metadata.labels", "app")`` (fieldpath.SplitMaybeSubscriptedPath)."""
    if not field_path.endswith("']"):
        return None
    head, sep, key = field_path[:-2].partition("['")
    return (head, key) if sep and head else None


def field_selector(selector: dict[str, Any], path: str, supported: tuple[str, ...]) -> list[FieldError]:
    api_version, field_path = selector.get("apiVersion") or "", selector.get("fieldPath") or ""
    if not api_version:
        return [required(f"{path}.apiVersion")]
    if not field_path:
        return [required(f"{path}.fieldPath")]
    subscript = _split_subscript(field_path)
    if api_version != "v1":
        problem = f"unsupported pod version: {api_version}"
    elif subscript and subscript[0] not in ("metadata.annotations", "metadata.labels"):
        problem = f"field label does not support subscript: {field_path}"
    elif not subscript and field_path not in (*DOWNWARD_API_LABELS, "spec.host"):
        problem = f"field label not supported: {field_path}"
    else:
        problem = ""
    if problem:
        return [invalid_value(f"{path}.fieldPath", field_path, f"error converting fieldPath: {problem}")]
    if subscript:
        key = subscript[1].lower() if subscript[0] == "metadata.annotations" else subscript[1]
        return invalid_each(path, key, naming.is_qualified_name(key))
    internal = "spec.nodeName" if field_path == "spec.host" else field_path
    return [] if internal in supported else [not_supported(f"{path}.fieldPath", internal, sorted(supported))]


def resource_selector(selector: dict[str, Any], path: str, in_volume: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    resource = selector.get("resource") or ""
    if in_volume and not selector.get("containerName"):
        errs.append(required(f"{path}.containerName"))
    elif not resource:
        errs.append(required(f"{path}.resource"))
    elif resource not in RESOURCE_FIELD_PATHS and not re.match(r"(limits|requests)\.hugepages-", resource):
        errs.append(not_supported(f"{path}.resource", resource, RESOURCE_FIELD_PATHS))
    divisor = selector.get("divisor")
    if divisor is None:
        return errs
    try:
        canonical = canonical_quantity(divisor)
    except (ValueError, TypeError) as exc:
        return errs + [invalid_value(f"{path}.divisor", divisor, str(exc))]
    allowed, message = _DIVISORS.get(resource.partition(".")[2], (None, ""))
    if canonical != "0" and allowed is not None and canonical not in allowed:
        errs.append(invalid_value(f"{path}.divisor", resource, message))
    return errs


def _downward_file(item: dict[str, Any], path: str) -> list[FieldError]:
    """Kubernetes reports a file's errors on the source's path, without the item's index."""
    errs = [] if item.get("path") else [required(f"{path}.path")]
    errs += _local_non_reserved_path(f"{path}.path", str(item.get("path") or ""))
    if item.get("fieldRef") is not None:
        errs += field_selector(as_dict(item["fieldRef"]), f"{path}.fieldRef", VOLUME_FIELD_PATHS)
        if item.get("resourceFieldRef") is not None:
            errs.append(
                invalid_value(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
            )
    elif item.get("resourceFieldRef") is not None:
        errs += resource_selector(as_dict(item["resourceFieldRef"]), f"{path}.resourceFieldRef", True)
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    return errs + _mode(f"{path}.mode", item.get("mode"))


def _projected(source: dict[str, Any], path: str) -> list[FieldError]:
    errs = _mode(f"{path}.defaultMode", source.get("defaultMode"))
    seen_paths: set[str] = set()

    def claim(target: str, value: Any) -> list[FieldError]:
        if target in seen_paths:
            return [invalid_value(path, value, "conflicting duplicate paths")]
        seen_paths.add(target)
        return []

    for i, projection in enumerate(items(source.get("sources"))):
        at, count = f"{path}.sources[{i}]", 0
        for kind in ("secret", "configMap"):
            if projection.get(kind) is None:
                continue
            count += 1
            sub = as_dict(projection[kind])
            if not sub.get("name"):
                errs.append(required(f"{at}.{kind}.name"))
            for j, item in enumerate(items(sub.get("items"))):
                errs += _key_to_path(item, f"{at}.{kind}.items[{j}]")
                if item.get("path"):
                    errs += claim(str(item["path"]), sub.get("name") or "")
        if projection.get("downwardAPI") is not None:
            count += 1
            for item in items(as_dict(projection["downwardAPI"]).get("items")):
                errs += _downward_file(item, f"{at}.downwardAPI")
                if item.get("path"):
                    errs += claim(str(item["path"]), str(item["path"]))
        if projection.get("serviceAccountToken") is not None:
            count += 1
            token = as_dict(projection["serviceAccountToken"])
            seconds = as_int(token.get("expirationSeconds")) or 0
            if seconds < 600:
                errs.append(
                    invalid_value(
                        f"{at}.serviceAccountToken.expirationSeconds",
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    )
                )
            elif seconds > 2**32:
                errs.append(
                    invalid_value(
                        f"{at}.serviceAccountToken.expirationSeconds",
                        seconds,
                        "may not specify a duration larger than 2^32 seconds",
                    )
                )
            if not token.get("path"):
                errs.append(required(f"{path}.path"))
            else:
                errs += _local_non_reserved_path(f"{path}.path", str(token["path"]))
        if projection.get("clusterTrustBundle") is not None:
            count += 1
        if count > 1:
            errs.append(forbidden_field(at, MORE_THAN_ONE_VOLUME))
    return errs


def _volume_source(kind: str, source: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if kind == "emptyDir" and source.get("sizeLimit") is not None:
        errs += validate_quantity(f"{path}.sizeLimit", source["sizeLimit"])
        if not errs and parse_quantity(source["sizeLimit"]) < 0:
            errs = [forbidden_field(f"{path}.sizeLimit", "SizeLimit field must be a valid resource quantity")]
    elif kind == "hostPath":
        if not source.get("path"):
            return [required(f"{path}.path")]
        errs += _no_backsteps(f"{path}.path", str(source["path"]))
        if source.get("type") is not None and source["type"] not in HOST_PATH_TYPES:
            errs.append(not_supported(f"{path}.type", source["type"], HOST_PATH_TYPES))
    elif kind in ("configMap", "secret"):
        name_key = "name" if kind == "configMap" else "secretName"
        if not source.get(name_key):
            errs.append(required(f"{path}.{name_key}"))
        errs += _mode(f"{path}.defaultMode", source.get("defaultMode"))
        for i, item in enumerate(items(source.get("items"))):
            errs += _key_to_path(item, f"{path}.items[{i}]")
    elif kind == "downwardAPI":
        errs += _mode(f"{path}.defaultMode", source.get("defaultMode"))
        for item in items(source.get("items")):
            errs += _downward_file(item, path)
    elif kind == "projected":
        errs += _projected(source, path)
    elif kind == "persistentVolumeClaim" and not source.get("claimName"):
        errs.append(required(f"{path}.claimName"))
    return errs


def validate_volumes(volumes: Any) -> tuple[set[str], list[FieldError]]:
    """The names of the valid volumes (only those can be mounted) and every volume error."""
    names: set[str] = set()
    errs: list[FieldError] = []
    for i, volume in enumerate(items(volumes)):
        at = f"spec.volumes[{i}]"
        volume_errs: list[FieldError] = []
        present = [(key, label) for key, label in VOLUME_SOURCE_ORDER if volume.get(key) is not None]
        if present:
            first = present[0][0]
            volume_errs += _volume_source(first, as_dict(volume[first]), f"{at}.{first}")
            volume_errs += [forbidden_field(f"{at}.{label}", MORE_THAN_ONE_VOLUME) for _, label in present[1:]]
        else:
            volume_errs.append(required(at, "must specify a volume type"))
        name = volume.get("name") or ""
        if not name:
            volume_errs.append(required(f"{at}.name"))
        else:
            volume_errs += invalid_each(f"{at}.name", name, naming.is_dns1123_label(name))
        if name in names:
            volume_errs.append(duplicate(f"{at}.name", name))
        if volume_errs:
            errs += volume_errs
        else:
            names.add(name)
    return names, errs
