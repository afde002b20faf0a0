"""kube-controller-manager's endpoints and endpointslice controllers: each Service with a selector gets an Endpoints
object of its name and EndpointSlices (discovery.k8s.io/v1) listing the selected pods' IPs, as the nodes report them
(``status.podIP(s)``: a host-network pod's is its node's), with the Service's ports resolved on each pod.

What goes in is computed by pure functions over one Service and its namespace's pods (``endpoints_for``,
``slices_for``); the controller only compares and writes. For a fleet of thousands of pods it keeps the pods and the
Services indexed by namespace, and a pod event concerns only the Services of its namespace whose selector matches the
pod (before or after), and only when something an endpoint shows changed (labels, IPs, readiness, node, deletion),
not on every status a node posts.

As kube's: no Endpoints or slices for a Service without a selector (its Endpoints are the user's) or of type
ExternalName; a slice holds at most 100 endpoints of one address type and one set of ports; a Service with no
endpoints keeps one empty placeholder slice. Not done: the EndpointSlice mirroring of user-made Endpoints, topology
(zones, hints), the ``last-change-trigger-time`` annotation and the 1000-address cap of Endpoints.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from edgeworkers.cloud import workloads
from edgeworkers.cloud.controller import Controller, Key, TokenBucket
from edgeworkers.cloud.index import Index
from edgeworkers.cloud.services import NONE, family_of
from edgeworkers.cloud.store import DELETED, Clock, Event, Store
from edgeworkers.cloud.watch import Hub
from edgeworkers.config import Settings
from edgeworkers.k8s.metavalidation import as_dict, as_list, items

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager's --max-endpoints-per-slice
Ports = tuple[tuple[str, int, str, str], ...]  # (name, port, protocol, appProtocol) of each resolved service port


def default_endpoints(obj: dict) -> dict:
    """``SetDefaults_Endpoints``: each port's protocol is TCP unless set."""
    for subset in items(obj.get("subsets")):
        for port in (p for p in as_list(subset.get("ports")) if isinstance(p, dict)):
            port.setdefault("protocol", "TCP")
    return obj


# -- what a Service's endpoints are (pure) ---------------------------------------------------------------------------

def selector(svc: dict) -> dict | None:
    """The Service's selector, None when it has none (an empty one selects nothing, as kube stores it: nil)."""
    spec = as_dict(svc.get("spec"))
    chosen = spec.get("selector")
    if spec.get("type") == "ExternalName" or not isinstance(chosen, dict) or not chosen:
        return None
    return chosen


def selects(chosen: dict, pod: dict) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in chosen.items())


def in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """kube's ``ShouldPodBeInEndpoints``: not finished, with an IP, not being deleted (unless asked)."""
    status = pod.get("status") or {}
    if status.get("phase") in workloads.TERMINAL or not (status.get("podIP") or status.get("podIPs")):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def pod_ip(pod: dict, family: str) -> str | None:
    """The pod's IP of ``family`` (from ``podIPs``, else ``podIP``)."""
    status = pod.get("status") or {}
    ips = [entry.get("ip") for entry in items(status.get("podIPs"))] or [status.get("podIP")]
    return next((ip for ip in ips if isinstance(ip, str) and ip and family_of(ip) == family), None)


def find_port(pod: dict, service_port: dict) -> int | None:
    """kube's ``podutil.FindPort``: a numeric targetPort as is; a named one from the pod's container ports of that
    name and the Service port's protocol (None when no container has it)."""
    target = service_port.get("targetPort")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in items((pod.get("spec") or {}).get("containers")):
        for port in items(container.get("ports")):
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def resolved_ports(svc: dict, pod: dict) -> Ports | None:
    """The Service's ports on this pod (those it cannot resolve left out); None: the pod serves none of them."""
    ports = items(as_dict(svc.get("spec")).get("ports"))
    found = tuple((p.get("name") or "", number, p.get("protocol") or "TCP", p.get("appProtocol") or "")
                  for p in ports if (number := find_port(pod, p)) is not None)
    return found if found or not ports else None


def _target(pod: dict) -> dict:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta.get("uid", "")}


def _hostname(svc: dict, pod: dict) -> str | None:
    """``ShouldSetHostname``: the pod's hostname when its subdomain is this Service."""
    spec = pod.get("spec") or {}
    meta = svc["metadata"]
    if spec.get("hostname") and spec.get("subdomain") == meta["name"] and pod["metadata"]["namespace"] == meta.get(
            "namespace"):
        return spec["hostname"]
    return None


def families(svc: dict) -> list[str]:
    spec = as_dict(svc.get("spec"))
    known = [f for f in as_list(spec.get("ipFamilies")) if f in ("IPv4", "IPv6")]
    return known or [family_of(spec["clusterIP"]) if spec.get("clusterIP") not in (None, "", NONE) else "IPv4"]


def _endpoint_port(name: str, port: int, protocol: str, app: str, *, named: bool) -> dict:
    out: dict[str, Any] = {"name": name} if name or named else {}
    out.update(port=port, protocol=protocol)
    if app:
        out["appProtocol"] = app
    return out


def _labels(svc: dict, extra: dict[str, str]) -> dict[str, str]:
    labels = {k: v for k, v in (svc["metadata"].get("labels") or {}).items()
              if k not in (SERVICE_NAME, MANAGED_BY, HEADLESS)}
    if as_dict(svc.get("spec")).get("clusterIP") == NONE:
        labels[HEADLESS] = ""
    return {**labels, **extra}


def endpoints_for(svc: dict, pods: Iterable[dict]) -> dict:
    """The Endpoints of ``svc`` (its metadata's labels and its subsets) over the pods it selects: a ready pod's address
    in ``addresses``, another's in ``notReadyAddresses`` (``publishNotReadyAddresses``: all ready), grouped by the
    ports they serve (kube's ``RepackSubsets``)."""
    family = families(svc)[0]
    tolerate = bool(as_dict(svc.get("spec")).get("publishNotReadyAddresses"))
    groups: dict[Ports, tuple[list[dict], list[dict]]] = {}
    for pod in pods:
        ip = pod_ip(pod, family)
        ports = resolved_ports(svc, pod)
        if ip is None or ports is None or not in_endpoints(pod, tolerate):
            continue
        address: dict[str, Any] = {"ip": ip}
        if hostname := _hostname(svc, pod):
            address["hostname"] = hostname
        if node := (pod.get("spec") or {}).get("nodeName"):
            address["nodeName"] = node
        address["targetRef"] = _target(pod)
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if tolerate or workloads.is_ready(pod) else not_ready).append(address)
    subsets = []
    for ports, (ready, not_ready) in groups.items():
        subset: dict[str, Any] = {}
        for key, addresses in (("addresses", ready), ("notReadyAddresses", not_ready)):
            if addresses:
                subset[key] = sorted(addresses, key=lambda a: (a["ip"], a["targetRef"]["uid"]))
        if ports:
            subset["ports"] = [_endpoint_port(*port, named=False) for port in sorted(ports)]
        subsets.append(subset)
    subsets.sort(key=lambda s: [a["ip"] for a in s.get("addresses", s.get("notReadyAddresses", []))])
    body: dict[str, Any] = {"metadata": {"name": svc["metadata"]["name"], "namespace": svc["metadata"]["namespace"],
                                         "labels": _labels(svc, {})}}
    if subsets:
        body["subsets"] = subsets
    return body


def slice_groups(svc: dict, pods: Iterable[dict]) -> list[tuple[str, Ports, list[dict]]]:
    """The EndpointSlices ``svc`` needs, each as (addressType, ports, endpoints): its endpoints by address type and set
    of ports, at most 100 a slice; one empty placeholder when there are none."""
    spec = as_dict(svc.get("spec"))
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[str, Ports], list[dict]] = {}
    pods = sorted(pods, key=lambda p: p["metadata"]["name"])
    for family in families(svc):
        for pod in pods:
            ip = pod_ip(pod, family)
            ports = resolved_ports(svc, pod)
            if ip is None or ports is None or not in_endpoints(pod, True):
                continue
            serving = workloads.is_ready(pod)
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            endpoint: dict[str, Any] = {
                "addresses": [ip],
                "conditions": {"ready": tolerate or (serving and not terminating), "serving": serving,
                               "terminating": terminating},
            }
            if hostname := _hostname(svc, pod):
                endpoint["hostname"] = hostname
            endpoint["targetRef"] = _target(pod)
            if node := (pod.get("spec") or {}).get("nodeName"):
                endpoint["nodeName"] = node
            groups.setdefault((family, ports), []).append(endpoint)
    chunks = [(family, ports, endpoints[i:i + MAX_ENDPOINTS_PER_SLICE])
              for (family, ports), endpoints in groups.items()
              for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE)]
    return chunks or [(families(svc)[0], (), [])]


def slice_body(svc: dict, address_type: str, ports: Ports, endpoints: list[dict]) -> dict:
    """A new EndpointSlice of ``svc`` (named by the store from ``<service>-``)."""
    meta = svc["metadata"]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                     "labels": _labels(svc, {SERVICE_NAME: meta["name"], MANAGED_BY: CONTROLLER_NAME}),
                     "ownerReferences": [workloads.controller_ref("services", svc)]},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": [_endpoint_port(*port, named=True) for port in sorted(ports)],
    }


# -- the controller --------------------------------------------------------------------------------------------------

def _namespace(obj: dict) -> str:
    return obj["metadata"].get("namespace", "")


def _slice_owner(obj: dict) -> tuple[str, str]:
    return _namespace(obj), (obj["metadata"].get("labels") or {}).get(SERVICE_NAME, "")


def _endpoint_view(pod: dict) -> tuple:
    """What of a pod an endpoint shows: a change elsewhere (a container's restart count) concerns no Service."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (pod["metadata"].get("labels"), pod["metadata"].get("deletionTimestamp"), status.get("podIP"),
            status.get("podIPs"), status.get("phase"), workloads.is_ready(pod), spec.get("nodeName"),
            spec.get("hostname"), spec.get("subdomain"))


class EndpointsController(Controller):
    """Keeps each selecting Service's Endpoints and EndpointSlices."""

    name = "endpoints"
    resource = "services"

    def __init__(self, store: Store, hub: Hub, clock: Clock, resync_s: float = 30.0) -> None:
        # The indexes listen first, so they are up to date when ``keys_for`` (and later ``sync``) reads them.
        self.pods = Index(store, hub, "pods", _namespace)
        self.services = Index(store, hub, "services", _namespace)
        self.slices = Index(store, hub, "endpointslices", _slice_owner)
        super().__init__(store, hub, clock, resync_s)

    @classmethod
    def make(cls, store: Store, hub: Hub, clock: Clock, _settings: Settings, _limiter: TokenBucket) -> EndpointsController:
        return cls(store, hub, clock)

    def keys_for(self, event: Event) -> Iterator[Key]:
        obj = event.object
        if event.resource == "services":
            yield _namespace(obj), obj["metadata"]["name"]
        elif event.resource == "pods":
            if event.old is not None and _endpoint_view(event.old) == _endpoint_view(obj):
                return
            namespace = _namespace(obj)
            for svc in self.services.get(namespace):
                chosen = selector(svc)
                if chosen is not None and (selects(chosen, obj) or (event.old is not None and
                                                                    selects(chosen, event.old))):
                    yield namespace, svc["metadata"]["name"]
        elif event.type == DELETED and event.resource == "endpoints":
            yield _namespace(obj), obj["metadata"]["name"]  # someone deleted what this controller keeps
        elif event.type == DELETED and event.resource == "endpointslices":
            if (obj["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME:
                yield _slice_owner(obj)

    def sync(self, key: Key) -> None:
        namespace, name = key
        svc = self.store.find("services", namespace, name)
        existing = self.store.find("endpoints", namespace, name)
        managed = [s for s in self.slices.get(key)
                   if (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME]
        if svc is None or as_dict(svc.get("spec")).get("type") == "ExternalName":
            if existing is not None:
                workloads.delete(self.store, self.hub, "endpoints", existing)
            for stale in managed:
                workloads.delete(self.store, self.hub, "endpointslices", stale)
            return
        chosen = selector(svc)
        if chosen is None:
            return  # its Endpoints are the user's
        pods = [pod for pod in self.pods.get(namespace) if selects(chosen, pod)]
        with self.store.atomic():
            self._sync_endpoints(endpoints_for(svc, pods), existing)
            self._sync_slices(svc, slice_groups(svc, pods), managed)

    def _sync_endpoints(self, wanted: dict, existing: dict | None) -> None:
        if existing is None:
            workloads.create(self.store, self.hub, "endpoints", {"apiVersion": "v1", "kind": "Endpoints", **wanted})
            return
        if existing.get("subsets") == wanted.get("subsets") and \
                (existing["metadata"].get("labels") or {}) == wanted["metadata"]["labels"]:
            return
        new = workloads.copy(existing)
        new["metadata"]["labels"] = wanted["metadata"]["labels"]
        new.pop("subsets", None)
        if "subsets" in wanted:
            new["subsets"] = wanted["subsets"]
        workloads.update(self.store, self.hub, "endpoints", new)

    def _sync_slices(self, svc: dict, groups: list[tuple[str, Ports, list[dict]]], managed: list[dict]) -> None:
        """Each wanted slice into an existing slice of the same address type and ports if any, else into any leftover
        slice, else a new one; leftovers deleted."""
        wanted = [slice_body(svc, *group) for group in groups]
        leftover = sorted(managed, key=lambda s: s["metadata"]["name"])
        unmatched = []
        for body in wanted:
            same = next((s for s in leftover if (s.get("addressType"), s.get("ports")) ==
                         (body["addressType"], body["ports"])), None)
            if same is None:
                unmatched.append(body)
            else:
                leftover.remove(same)
                self._write_slice(same, body)
        for body in unmatched:
            if leftover:
                self._write_slice(leftover.pop(0), body)
            else:
                workloads.create(self.store, self.hub, "endpointslices", body)
        for stale in leftover:
            workloads.delete(self.store, self.hub, "endpointslices", stale)

    def _write_slice(self, existing: dict, body: dict) -> None:
        fields = ("addressType", "endpoints", "ports")
        labels, owners = body["metadata"]["labels"], body["metadata"]["ownerReferences"]
        if all(existing.get(f) == body[f] for f in fields) and existing["metadata"].get("labels") == labels \
                and existing["metadata"].get("ownerReferences") == owners:
            return
        new = workloads.copy(existing)
        new.update({f: body[f] for f in fields})
        new["metadata"]["labels"], new["metadata"]["ownerReferences"] = labels, owners
        workloads.update(self.store, self.hub, "endpointslices", new)
