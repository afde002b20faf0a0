"""Services as kube-apiserver's service registry keeps them (pkg/registry/core/service): defaulting
(pkg/apis/core/v1/defaults.go ``SetDefaults_Service``), validation (``ValidateService``, ``ValidateServiceUpdate``) and
the allocation of cluster IPs and node ports (its ``storage/alloc.go``), with kube's messages.

The allocator keeps no state of its own: what is taken is read from the stored Services (the store's head) at each
allocation, and the request writes its Service in the same turn of the event loop. So an address is never handed out
twice, one freed by a delete (or a change to ExternalName) is free at once, a failed commit that undoes a Service frees
its address with it, and a restart finds every allocation where it was. kube keeps a bitmap beside the objects and
repairs it from them every few minutes; here the objects are the bitmap. The range's first address is the
``kubernetes`` Service's in kube; it is never handed out here (no such Service is made: see the README's "Services").
"""
from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edgeworkers.cloud.store import Store
from edgeworkers.config import Settings
from edgeworkers.k8s import naming, status
from edgeworkers.k8s.metavalidation import as_dict, as_int, as_list, invalid_each, items, validate_labels
from edgeworkers.k8s.status import FieldError, duplicate, forbidden_field, invalid_value, not_supported, required

NONE = "None"  # spec.clusterIP of a headless Service
TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
AFFINITIES = ("ClientIP", "None")
FAMILIES = ("IPv4", "IPv6")
FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
TRAFFIC_POLICIES = ("Cluster", "Local")
AFFINITY_TIMEOUT_S, AFFINITY_TIMEOUT_MAX_S = 10800, 86400
KUBELET_PORT = 10250
VALID_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _spec(svc: dict) -> dict:
    return as_dict(svc.get("spec"))


def needs_cluster_ip(svc: dict) -> bool:
    return _spec(svc).get("type") != "ExternalName"


def needs_node_ports(svc: dict) -> bool:
    return _spec(svc).get("type") in ("NodePort", "LoadBalancer")


def needs_health_check(svc: dict) -> bool:
    spec = _spec(svc)
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def is_headless(svc: dict) -> bool:
    return _spec(svc).get("clusterIP") == NONE


# -- types (what kube's JSON decoding refuses with a 400) --------------------------------------------------------------

_GO_TYPES = {str: "string", int: "int32", bool: "bool", dict: "map[string]string", list: "[]string"}
_SPEC_TYPES: dict[str, type | tuple[type, type]] = {
    "clusterIP": str, "clusterIPs": (list, str), "type": str, "externalName": str, "externalIPs": (list, str),
    "ipFamilies": (list, str), "ipFamilyPolicy": str, "sessionAffinity": str, "selector": (dict, str),
    "externalTrafficPolicy": str, "internalTrafficPolicy": str, "healthCheckNodePort": int,
    "publishNotReadyAddresses": bool, "allocateLoadBalancerNodePorts": bool, "loadBalancerIP": str,
    "loadBalancerClass": str, "sessionAffinityConfig": dict, "ports": list,
}
_PORT_TYPES: dict[str, type] = {"name": str, "protocol": str, "appProtocol": str, "port": int, "nodePort": int}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {str: "string", int: "number", float: "number", list: "array", dict: "object"}.get(type(value), "value")


def _is(value: Any, kind: type) -> bool:
    return value is None or (isinstance(value, kind) and (kind is bool or not isinstance(value, bool)))


def check_types(svc: dict) -> None:
    """400 for a field of the wrong JSON type, as kube-apiserver's decoding answers (``cannot unmarshal``)."""
    def refuse(value: Any, path: str, go_type: str) -> status.APIError:
        return status.bad_request(f'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal '
                                  f"{_json_type(value)} into Go struct field {path} of type {go_type}")
    spec = svc.get("spec")
    if not _is(spec, dict):
        raise refuse(spec, "Service.spec", "v1.ServiceSpec")
    for key, value in (spec or {}).items():
        kind = _SPEC_TYPES.get(key)
        if kind is None:
            continue
        outer, inner = kind if isinstance(kind, tuple) else (kind, None)
        if not _is(value, outer):
            go_type = {"ports": "[]v1.ServicePort", "sessionAffinityConfig": "v1.SessionAffinityConfig"}.get(key)
            raise refuse(value, f"ServiceSpec.spec.{key}", go_type or _GO_TYPES[outer])
        members = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        if inner is not None and any(not isinstance(v, inner) for v in members):
            raise refuse(next(v for v in members if not isinstance(v, inner)), f"ServiceSpec.spec.{key}", "string")
    for port in as_list((spec or {}).get("ports")):
        if not isinstance(port, dict):
            raise refuse(port, "ServiceSpec.spec.ports", "v1.ServicePort")
        for key, kind in _PORT_TYPES.items():
            if not _is(port.get(key), kind):
                raise refuse(port[key], f"ServicePort.spec.ports.{key}", _GO_TYPES[kind])
        if port.get("targetPort") is not None and not (isinstance(port["targetPort"], str) or _is(port["targetPort"], int)):
            raise refuse(port["targetPort"], "ServicePort.spec.ports.targetPort", "intstr.IntOrString")


# -- defaulting ------------------------------------------------------------------------------------------------------

def default_service(svc: dict) -> dict:
    """``SetDefaults_Service``, the strategy's clusterIPs from clusterIP, and an empty ``status.loadBalancer``."""
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        return svc
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = as_dict(as_dict(spec.get("sessionAffinityConfig")).get("clientIP"))
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": AFFINITY_TIMEOUT_S}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in (p for p in as_list(spec.get("ports")) if isinstance(p, dict)):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    accessible = kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))
    if accessible and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if not isinstance(svc.get("status"), dict):
        svc["status"] = {}
    svc["status"].setdefault("loadBalancer", {})
    return svc


# -- validation ------------------------------------------------------------------------------------------------------

def validate_service(svc: dict, old: dict | None) -> list[FieldError]:
    """``ValidateService`` (the metadata aside: a Service's name is a DNS-1035 label), plus ``ValidateServiceUpdate``'s
    immutable cluster IPs on update."""
    meta = as_dict(svc.get("metadata"))
    errs: list[FieldError] = []
    for key in ("name", "generateName"):
        if meta.get(key):
            errs += invalid_each(f"metadata.{key}", meta[key], naming.name_is_dns1035_label(meta[key], key != "name"))
    spec = _spec(svc)
    kind = spec.get("type")
    ports = items(spec.get("ports"))
    cluster_ips = as_list(spec.get("clusterIPs"))
    if not ports and not is_headless(svc) and kind != "ExternalName":
        errs.append(required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and cluster_ips and cluster_ips[0] == NONE:
        errs.append(invalid_value("spec.clusterIPs[0]", NONE, f"may not be set to 'None' for {kind} services"))
    if kind == "LoadBalancer":
        errs += [invalid_value(f"spec.ports[{i}]", p.get("port"), f"may not expose port {KUBELET_PORT} externally "
                               "since it is used by kubelet") for i, p in enumerate(ports) if p.get("port") == KUBELET_PORT]
    if kind == "ExternalName":
        errs += _external_name(spec)
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _port(port, len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        if not isinstance(spec["selector"], dict):
            errs.append(invalid_value("spec.selector", spec["selector"], "must be a map of labels"))
        errs += validate_labels(spec.get("selector"), "spec.selector")
    errs += _session_affinity(spec)
    errs += cluster_ips_errors(svc)
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        errs += _ip(f"spec.externalIPs[{i}]", ip)
    if not kind:
        errs.append(required("spec.type"))
    elif kind not in TYPES:
        errs.append(not_supported("spec.type", kind, TYPES))
    errs += _node_ports(kind, ports)
    errs += _traffic_policies(spec)
    if old is not None:
        errs += _cluster_ips_update(old, svc)
    return errs


def _external_name(spec: dict) -> list[FieldError]:
    errs = []
    for key in ("clusterIPs", "ipFamilies"):
        if spec.get(key):
            errs.append(forbidden_field(f"spec.{key}", "may not be set for ExternalName services"))
    if spec.get("ipFamilyPolicy") is not None:
        errs.append(forbidden_field("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
    cname = str(spec.get("externalName") or "").removesuffix(".")
    if not cname:
        return [*errs, required("spec.externalName")]
    return errs + invalid_each("spec.externalName", cname, naming.is_dns1123_subdomain(cname))


def _port(port: dict, name_required: bool, names: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if name_required and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += invalid_each(f"{path}.name", name, naming.is_dns1123_label(str(name)))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
    number = as_int(port.get("port")) or 0
    errs += invalid_each(f"{path}.port", number, naming.is_valid_port_num(number))
    protocol = port.get("protocol")
    if not protocol:
        errs.append(required(f"{path}.protocol"))
    elif protocol not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    target = port.get("targetPort")
    if isinstance(target, str):
        errs += invalid_each(f"{path}.targetPort", target, naming.is_valid_port_name(target))
    else:
        number = as_int(target) or 0
        errs += invalid_each(f"{path}.targetPort", number, naming.is_valid_port_num(number))
    return errs


def _session_affinity(spec: dict) -> list[FieldError]:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        return [required("spec.sessionAffinity")]
    if affinity not in AFFINITIES:
        return [not_supported("spec.sessionAffinity", affinity, AFFINITIES)]
    config = spec.get("sessionAffinityConfig")
    if affinity == "None":
        return [forbidden_field("spec.sessionAffinityConfig", "must not be set when session affinity is None")] \
            if config is not None else []
    timeout = as_dict(as_dict(config).get("clientIP")).get("timeoutSeconds")
    if not isinstance(timeout, int) or not 0 < timeout <= AFFINITY_TIMEOUT_MAX_S:
        return [invalid_value("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                              f"must be greater than 0 and less than {AFFINITY_TIMEOUT_MAX_S}")]
    return []


def _ip(path: str, value: Any) -> list[FieldError]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [invalid_value(path, value, VALID_IP)]
    return []


def cluster_ips_errors(svc: dict) -> list[FieldError]:
    """``ValidateServiceClusterIPsRelatedFields``: clusterIP and clusterIPs agree, each a valid IP (or one ``None``),
    families and policy known, each IP of its family."""
    spec = _spec(svc)
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cluster_ip, cluster_ips = spec.get("clusterIP") or "", as_list(spec.get("clusterIPs"))
    if cluster_ip and not cluster_ips:
        errs.append(required("spec.clusterIPs"))
    elif cluster_ip and cluster_ips[0] != cluster_ip:
        errs.append(invalid_value("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    elif not cluster_ip and cluster_ips:
        errs.append(invalid_value("spec.clusterIPs", cluster_ips, "must be empty when `clusterIP` is not specified"))
    families = as_list(spec.get("ipFamilies"))
    for i, family in enumerate(families):
        if family not in FAMILIES:
            errs.append(not_supported(f"spec.ipFamilies[{i}]", family, FAMILIES))
        if family in families[:i]:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", family))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in FAMILY_POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, FAMILY_POLICIES))
    bad_ips = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == NONE:
            if len(cluster_ips) > 1:
                bad_ips = True
                errs.append(invalid_value("spec.clusterIPs", cluster_ips, "'None' must be the first and only value"))
            continue
        ip_errs = _ip(f"spec.clusterIPs[{i}]", ip)
        bad_ips = bad_ips or bool(ip_errs)
        errs += ip_errs
    if len(cluster_ips) > 2:
        errs.append(invalid_value("spec.clusterIPs", cluster_ips, "may only hold up to 2 values"))
    if len(families) > 2:
        errs.append(invalid_value("spec.ipFamilies", families, "may only hold up to 2 values"))
    if bad_ips or (cluster_ips and cluster_ips[0] == NONE):
        return errs
    if len(cluster_ips) == 2 and family_of(cluster_ips[0]) == family_of(cluster_ips[1]):
        errs.append(invalid_value("spec.clusterIPs", cluster_ips, "may specify no more than one IP for each IP family"))
    for i, (ip, family) in enumerate(zip(cluster_ips, families, strict=False)):
        if family in FAMILIES and family_of(ip) != family:
            errs.append(invalid_value(f"spec.clusterIPs[{i}]", ip,
                                      f"expected an {family} value as indicated by `ipFamilies[{i}]`"))
    return errs


def _node_ports(kind: Any, ports: list[dict]) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[tuple[Any, int]] = set()
    pairs: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        node_port = as_int(port.get("nodePort")) or 0
        if node_port and kind == "ClusterIP":
            errs.append(forbidden_field(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
        if node_port and (port.get("protocol"), node_port) in seen:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", node_port))
        seen.add((port.get("protocol"), node_port))
        pair = (port.get("protocol"), port.get("port"))
        if pair in pairs:
            errs.append(duplicate(f"spec.ports[{i}]", {"port": pair[1], "protocol": pair[0]}))
        pairs.add(pair)
    return errs


def _traffic_policies(spec: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
        value = spec.get(key)
        if value not in (None, "") and value not in TRAFFIC_POLICIES:
            errs.append(not_supported(f"spec.{key}", value, TRAFFIC_POLICIES))
    if spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer") and spec.get("internalTrafficPolicy") is None:
        errs.append(required("spec.internalTrafficPolicy"))
    if spec.get("healthCheckNodePort") and spec.get("externalTrafficPolicy") != "Local":
        errs.append(invalid_value("spec.healthCheckNodePort", spec["healthCheckNodePort"],
                                  "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    return errs


def _cluster_ips_update(old: dict, new: dict) -> list[FieldError]:
    """``validateUpgradeDowngradeClusterIPs``: an allocated cluster IP never changes, except to or from ExternalName."""
    if not needs_cluster_ip(old) or not needs_cluster_ip(new) or (is_headless(old) and is_headless(new)):
        return []
    before, after = as_list(_spec(old).get("clusterIPs")), as_list(_spec(new).get("clusterIPs"))
    if len(after) < len(before) and not after:
        return [invalid_value("spec.clusterIPs[0]", after, "primary clusterIP can not be unset")]
    return [invalid_value(f"spec.clusterIPs[{i}]", after, "may not change once set")
            for i, ip in enumerate(before[:len(after)]) if after[i] != ip]


# -- allocation ------------------------------------------------------------------------------------------------------

def family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


@dataclass(frozen=True)
class Band:
    """An allocation range as kube's bitmap allocators see it: ``size`` numbers from ``base``; a dynamic pick comes
    from the upper band (from ``offset``) first, leaving the lower band to what clients ask for by number (KEP-3070)."""
    base: int
    size: int
    offset: int
    reserved: frozenset[int] = frozenset()

    def pick(self, used: set[int], rng: random.Random) -> int | None:
        """A free number (None: the range is full), tried from a random place in the upper band, then the lower."""
        for low, high in ((self.offset, self.size), (0, self.offset)):
            if low >= high:
                continue
            start = rng.randrange(low, high)
            for i in itertools.chain(range(start, high), range(low, start)):
                number = self.base + i
                if number not in used and number not in self.reserved:
                    return number
        return None

    def __contains__(self, number: int) -> bool:
        return self.base <= number < self.base + self.size


def _offset(size: int, minimum: int, step: int, maximum: int) -> int:
    """kube's ``calculateRangeOffset``: min(max(minimum, size/step), maximum), none for a small range."""
    return 0 if size <= minimum else min(max(minimum, size // step), maximum)


def ip_band(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Band:
    """The addresses of a service range: its network address never, an IPv4 broadcast address never, the first
    host address kept for the ``kubernetes`` Service."""
    size = network.num_addresses - (2 if network.version == 4 else 1)
    first = int(network.network_address) + 1
    return Band(first, size, _offset(network.num_addresses, 16, 16, 256), frozenset({first}))


def port_band(port_range: str) -> Band:
    low, _, high = port_range.partition("-")
    size = int(high) - int(low) + 1
    return Band(int(low), size, _offset(size, 16, 32, 128))


class ServiceAllocator:
    """Cluster IPs and node ports for Services being created or updated, from the configured ranges."""

    def __init__(self, store: Store, settings: Settings, rng: random.Random | None = None) -> None:
        self.store = store
        self.network = ipaddress.ip_network(settings.service_cluster_ip_range)
        self.family = "IPv6" if self.network.version == 6 else "IPv4"
        self.ips = ip_band(self.network)
        self.port_range = settings.service_node_port_range
        self.ports = port_band(self.port_range)
        self.rng = rng or random.Random()

    def allocate(self, svc: dict, old: dict | None, _dry_run: bool = False) -> dict:
        """``svc`` with its IP family fields set and its cluster IP and node ports allocated (kube's
        ``beginCreate``/``beginUpdate``); 422 (or 500 for a full range) as kube answers. A dry run allocates alike:
        nothing is held before the Service is stored."""
        check_types(svc)
        spec = svc.get("spec")
        if not isinstance(spec, dict):
            return svc
        others = [s for s in self.store.list("services")
                  if old is None or s["metadata"]["uid"] != old["metadata"]["uid"]]
        if old is not None:
            _patch_allocated(svc, old)
            _normalize_cluster_ips(svc, old)
            _drop_type_dependent(svc, old)
        name = svc["metadata"].get("name") or svc["metadata"].get("generateName") or ""
        errs = self._families(svc, old)
        if errs:
            raise status.invalid("Service", name, errs)
        if needs_cluster_ip(svc) and not is_headless(svc) and (old is None or not needs_cluster_ip(old)):
            self._cluster_ip(svc, others, name)
        if needs_node_ports(svc):
            self._node_ports(svc, old, others, name)
        return svc

    # -- IP families (initIPFamilyFields, on a single-stack cluster) ---------------------------------------------------

    def _families(self, svc: dict, old: dict | None) -> list[FieldError]:
        spec = svc["spec"]
        if spec.get("type") == "ExternalName":
            return []
        if spec.get("ipFamilyPolicy") is None:
            old_policy = _spec(old).get("ipFamilyPolicy") if old is not None else None
            if old_policy is not None:
                spec["ipFamilyPolicy"] = old_policy
            elif is_headless(svc) and not spec.get("selector"):
                spec["ipFamilyPolicy"] = "RequireDualStack"
            else:
                spec["ipFamilyPolicy"] = "SingleStack"
        errs = cluster_ips_errors(svc)
        if errs:
            return errs
        families = spec.setdefault("ipFamilies", [])
        cluster_ips = as_list(spec.get("clusterIPs"))
        if spec["ipFamilyPolicy"] == "SingleStack":
            if old is not None and cluster_ips[1:] and cluster_ips == as_list(_spec(old).get("clusterIPs")):
                spec["clusterIPs"] = cluster_ips = cluster_ips[:1]
            if old is not None and families[1:] and families == as_list(_spec(old).get("ipFamilies")):
                spec["ipFamilies"] = families = families[:1]
            many = "must be 'RequireDualStack' or 'PreferDualStack' when multiple {} are specified"
            if len(cluster_ips) == 2:
                errs.append(invalid_value("spec.ipFamilyPolicy", "SingleStack", many.format("cluster IPs")))
            if len(families) == 2:
                errs.append(invalid_value("spec.ipFamilyPolicy", "SingleStack", many.format("IP families")))
        for i, ip in enumerate(cluster_ips):
            if ip == NONE:
                break
            if i >= len(families):
                if family_of(ip) != self.family:
                    errs.append(invalid_value(f"spec.clusterIPs[{i}]", cluster_ips,
                                              f"{family_of(ip)} is not configured on this cluster"))
                else:
                    families.append(family_of(ip))
        if errs:
            return errs
        if is_headless(svc) and not spec.get("selector"):
            if not families:
                families.append(self.family)
            if len(families) < 2 and spec["ipFamilyPolicy"] != "SingleStack":
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
            return []
        if spec["ipFamilyPolicy"] == "RequireDualStack":
            errs.append(invalid_value("spec.ipFamilyPolicy", "RequireDualStack",
                                      "this cluster is not configured for dual-stack services"))
        errs += [invalid_value(f"spec.ipFamilies[{i}]", family, "not configured on this cluster")
                 for i, family in enumerate(families) if family != self.family]
        if not errs and not families:
            families.append(self.family)
        return errs

    # -- cluster IPs ---------------------------------------------------------------------------------------------------

    def _cluster_ip(self, svc: dict, others: Iterable[dict], name: str) -> None:
        spec = svc["spec"]
        used = {int(ipaddress.ip_address(ip)) for other in others
                for ip in as_list(_spec(other).get("clusterIPs")) if ip and ip != NONE and family_of(ip) == self.family}
        wanted = as_list(spec.get("clusterIPs"))[:1]
        if not wanted or not wanted[0]:
            number = self.ips.pick(used, self.rng)
            if number is None:
                raise status.internal("failed to allocate a serviceIP: range is full")
            ip = str(ipaddress.ip_address(number))
        else:
            ip = wanted[0]
            number = int(ipaddress.ip_address(ip))
            if number not in self.ips:
                problem = f"provided IP is not in the valid range. The range of valid IPs is {self.network}"
            elif number in used or number in self.ips.reserved:
                problem = "provided IP is already allocated"
            else:
                problem = ""
            if problem:
                raise status.invalid("Service", name, [invalid_value(
                    "spec.clusterIPs", spec.get("clusterIPs"), f"failed to allocate IP {ip}: {problem}")])
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip, *as_list(spec.get("clusterIPs"))[1:]]

    # -- node ports ----------------------------------------------------------------------------------------------------

    def _node_ports(self, svc: dict, old: dict | None, others: Iterable[dict], name: str) -> None:
        spec = svc["spec"]
        used = {port for other in others for port in node_ports_of(other)}
        held = set(node_ports_of(old)) if old is not None and needs_node_ports(old) else set()
        if old is not None and needs_health_check(old) and _spec(old).get("healthCheckNodePort"):
            held.add(_spec(old)["healthCheckNodePort"])
        allocate = spec.get("type") == "NodePort" or spec.get("allocateLoadBalancerNodePorts") is not False
        by_port: dict[Any, int] = {}
        for i, port in enumerate(p for p in as_list(spec.get("ports")) if isinstance(p, dict)):
            number = as_int(port.get("nodePort")) or 0
            if number:
                if number not in held:
                    self._claim(number, used, f"spec.ports[{i}].nodePort", name)
                used.add(number)
            elif allocate:
                number = by_port.get(port.get("port")) or self._next_port(used)
                port["nodePort"] = number
            by_port.setdefault(port.get("port"), number)
        if needs_health_check(svc):
            number = as_int(spec.get("healthCheckNodePort")) or 0
            if not number:
                spec["healthCheckNodePort"] = self._next_port(used)
            elif number not in held:
                self._claim(number, used, "spec.healthCheckNodePort", name)

    def _claim(self, number: int, used: set[int], path: str, name: str) -> None:
        if number not in self.ports:
            problem = f"provided port is not in the valid range. The range of valid ports is {self.port_range}"
        elif number in used:
            problem = "provided port is already allocated"
        else:
            used.add(number)
            return
        raise status.invalid("Service", name, [invalid_value(path, number, problem)])

    def _next_port(self, used: set[int]) -> int:
        number = self.ports.pick(used, self.rng)
        if number is None:
            raise status.internal("failed to allocate a nodePort: range is full")
        used.add(number)
        return number


def node_ports_of(svc: dict) -> list[int]:
    spec = _spec(svc)
    ports = [as_int(p.get("nodePort")) or 0 for p in items(spec.get("ports"))]
    return [p for p in (*ports, as_int(spec.get("healthCheckNodePort")) or 0) if p]


def _patch_allocated(svc: dict, old: dict) -> None:
    """``patchAllocatedValues``: an update that leaves out what was allocated keeps it (a PUT of a manifest)."""
    spec, old_spec = svc["spec"], _spec(old)
    if needs_cluster_ip(old) and needs_cluster_ip(svc):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(svc):
        new_ports = items(spec.get("ports"))
        kept = set(node_ports_of(old)) & {as_int(p.get("nodePort")) or 0 for p in new_ports}
        by_name = {p.get("name") or "": as_int(p.get("nodePort")) or 0 for p in items(old_spec.get("ports"))}
        for port in (p for p in as_list(spec.get("ports")) if isinstance(p, dict)):
            if not port.get("nodePort") and by_name.get(port.get("name") or "", 0) not in kept | {0}:
                port["nodePort"] = by_name[port.get("name") or ""]
    if needs_health_check(old) and needs_health_check(svc) and not spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort")


def _normalize_cluster_ips(svc: dict, old: dict) -> None:
    """``normalizeClusterIPs`` on update: clusterIPs follow a client that changed only clusterIP."""
    spec, old_spec = svc["spec"], _spec(old)
    same = as_list(spec.get("clusterIPs")) == as_list(old_spec.get("clusterIPs"))
    if old_spec.get("clusterIPs") and not spec.get("clusterIPs") and old_spec.get("clusterIP") == spec.get("clusterIP"):
        spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if old_spec.get("clusterIP") != spec.get("clusterIP") and same:
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        else:
            spec.pop("clusterIPs", None)


def _drop_type_dependent(svc: dict, old: dict) -> None:
    """``dropTypeDependentFields``: a type change drops what only the old type needed, unless the client changed it."""
    spec, old_spec = svc["spec"], _spec(old)
    if needs_cluster_ip(old) and not needs_cluster_ip(svc):
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key) == old_spec.get(key):
                spec.pop(key, None)
    if needs_node_ports(old) and not needs_node_ports(svc) and node_ports_of(svc) == node_ports_of(old):
        for port in (p for p in as_list(spec.get("ports")) if isinstance(p, dict)):
            port.pop("nodePort", None)
    if needs_health_check(old) and not needs_health_check(svc) \
            and spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if old_spec.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer" \
            and spec.get("allocateLoadBalancerNodePorts") == old_spec.get("allocateLoadBalancerNodePorts"):
        spec.pop("allocateLoadBalancerNodePorts", None)
    if spec.get("type") not in ("LoadBalancer", "NodePort") and not spec.get("externalIPs") \
            and spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
    if spec.get("type") != "LoadBalancer" and isinstance(svc.get("status"), dict):
        svc["status"]["loadBalancer"] = {}

