"""Validation of the security profiles, sysctls and hostAliases of a pod, ported from Kubernetes'
``validateSeccompProfileField``, ``validateAppArmorProfileField``, ``validateSysctls`` and ``ValidateHostAliases``
(pkg/apis/core/validation/validation.go), with their paths and wording."""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from edgeworkers.k8s import naming
from edgeworkers.k8s.metavalidation import as_dict, as_list, invalid_each, items
from edgeworkers.k8s.status import FieldError, duplicate, invalid_value, not_supported, required, too_long

PROFILE_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")
MAX_APPARMOR_PROFILE = 4095  # PATH_MAX - 1
SYSCTL_MAX_LENGTH = 253
_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
SYSCTL_FMT = rf"({_SYSCTL_SEGMENT}[\./])*{_SYSCTL_SEGMENT}"
_SYSCTL = re.compile(SYSCTL_FMT)
_IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def validate_seccomp_profile(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    profile = as_dict(profile)
    kind, local = profile.get("type"), profile.get("localhostProfile")
    errs = _profile_type(kind, f"{path}.type", "seccompProfile")
    if kind == "Localhost":
        if local is None:
            errs.append(required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost"))
        else:
            local = str(local)
            if local.startswith("/"):
                errs.append(invalid_value(f"{path}.localhostProfile", local, "must be a relative path"))
            if ".." in local.split("/"):
                errs.append(invalid_value(f"{path}.localhostProfile", local, "must not contain '..'"))
    elif local is not None:
        errs.append(invalid_value(f"{path}.localhostProfile", profile,
                                  "can only be set when seccomp type is Localhost"))
    return errs


def validate_apparmor_profile(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    profile = as_dict(profile)
    kind, local = profile.get("type"), profile.get("localhostProfile")
    if kind not in ("Localhost", "RuntimeDefault", "Unconfined"):
        return _profile_type(kind, f"{path}.type", "appArmorProfile")
    if kind != "Localhost":
        detail = "can only be set when AppArmor type is Localhost"
        return [] if local is None else [invalid_value(f"{path}.localhostProfile", local, detail)]
    if local is None or not str(local).strip():
        return [required(f"{path}.localhostProfile", "must be set when AppArmor type is Localhost")]
    local = str(local)
    errs = []
    if local.strip() != local:
        errs.append(invalid_value(f"{path}.localhostProfile", local, "must not be padded with whitespace"))
    if len(local) > MAX_APPARMOR_PROFILE:
        errs.append(too_long(f"{path}.localhostProfile", MAX_APPARMOR_PROFILE))
    return errs


def _profile_type(kind: Any, path: str, field: str) -> list[FieldError]:
    if kind in PROFILE_TYPES:
        return []
    if not kind:
        return [required(path, f"type is required when {field} is set")]
    return [not_supported(path, kind, PROFILE_TYPES)]


def validate_sysctls(sysctls: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, sysctl in enumerate(items(sysctls)):
        name = str(sysctl.get("name") or "")
        at = f"{path}[{i}].name"
        if not name:
            errs.append(required(at))
        elif len(name) > SYSCTL_MAX_LENGTH or not _SYSCTL.fullmatch(name):
            errs.append(invalid_value(at, name, f"must have at most {SYSCTL_MAX_LENGTH} characters and match regex "
                                                f"{SYSCTL_FMT}"))
        elif name in names:
            errs.append(duplicate(at, name))
        names.add(name)
    return errs


def validate_host_aliases(aliases: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, alias in enumerate(items(aliases)):
        ip = str(alias.get("ip") or "")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            errs.append(invalid_value(f"{path}[{i}].ip", ip, _IP_ERROR))
        for j, hostname in enumerate(as_list(alias.get("hostnames"))):
            at = f"{path}[{i}].hostnames[{j}]"
            errs += invalid_each(at, hostname, naming.is_dns1123_subdomain(str(hostname)))
    return errs


__all__ = ["validate_apparmor_profile", "validate_host_aliases", "validate_seccomp_profile", "validate_sysctls"]
