"""A pod's ``resolv.conf`` as kubelet's DNS configurer makes it (pkg/kubelet/network/dns/dns.go).

``dnsPolicy``: ``Default`` takes the node's resolv.conf; ``ClusterFirst`` the cluster's DNS servers with the cluster
search domains and ``ndots:5`` (a host-network pod falls back to ``Default``, as does every pod while the node knows
no cluster DNS server: kubelet then records ``MissingClusterDNS``); ``ClusterFirstWithHostNet`` is ``ClusterFirst``
even on the host's network; ``None`` starts empty. ``dnsConfig`` is merged in (servers and searches appended without
duplicates, options by name), then cut to the resolver's limits (3 servers; 32 search domains, none over 253
characters, 2048 characters in all), each cut recorded as a ``DNSConfigForming`` warning.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from edgeworkers.k8s.pod import Pod

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN = 253  # a longer search domain makes some resolvers (glibc 2.28) abort
CLUSTER_OPTIONS = ("ndots:5",)


@dataclass
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The file's text, as dockershim's rewriteResolvFile writes it."""
        lines = [f"nameserver {server}" for server in self.servers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(f"{line}\n" for line in lines)


def parse_resolv_conf(text: str) -> DNSConfig:
    """kubelet's parseResolvConf: the nameservers, the last ``search`` line (without "." and trailing dots), the
    options of every ``options`` line (a later one of the same name wins)."""
    config = DNSConfig()
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            config.servers.append(fields[1])
        elif fields[0] == "search":
            config.searches = [s.removesuffix(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            config.options = _merge_options(config.options, [(*o.partition(":")[::2],) for o in fields[1:]])
    return config


def _merge_options(existing: list[str], added: list[tuple[str, str]]) -> list[str]:
    """kubelet's mergeDNSOptions: by name, a later value winning; in first-seen order (kubelet's map has none)."""
    merged = dict(tuple(option.partition(":")[::2]) for option in existing)
    merged.update(added)
    return [f"{name}:{value}" if value else name for name, value in merged.items()]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def cluster_searches(namespace: str, cluster_domain: str, host_searches: list[str]) -> list[str]:
    if not cluster_domain:
        return host_searches
    return _unique([f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain, *host_searches])


def pod_dns(
    pod: Pod, host: DNSConfig, cluster_dns: list[str], cluster_domain: str
) -> tuple[DNSConfig, list[tuple[str, str]]]:
    """The pod's DNS config and the warnings (reason, message) to record about it. ``host``: the node's resolv.conf,
    parsed; ``cluster_dns``: the cluster's DNS servers (kubelet's --cluster-dns), none here yet."""
    warnings = []
    policy = pod.spec.dns_policy or "ClusterFirst"
    cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not pod.spec.host_network)
    if cluster and not cluster_dns:
        node = ('kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. '
                'Falling back to "Default" policy.')
        warnings.append(("MissingClusterDNS", f'pod: "{pod.metadata.name}_{pod.metadata.namespace}'
                                              f'({pod.metadata.uid})". {node}'))
        cluster = False
    if policy == "None":
        config = DNSConfig()
    elif cluster:
        namespace = pod.metadata.namespace or "default"
        config = DNSConfig(list(cluster_dns), cluster_searches(namespace, cluster_domain, host.searches),
                           list(CLUSTER_OPTIONS))
    else:
        config = DNSConfig(list(host.servers), list(host.searches), list(host.options))
    extra = pod.spec.dns_config if isinstance(pod.spec.dns_config, dict) else {}
    if extra:
        config.servers = _unique(config.servers + [str(s) for s in extra.get("nameservers") or []])
        config.searches = _unique(config.searches + [str(s) for s in extra.get("searches") or []])
        added = [(str(o.get("name") or ""), "" if o.get("value") is None else str(o["value"]))
                 for o in extra.get("options") or [] if isinstance(o, dict)]
        config.options = _merge_options(config.options, added)
    return _fit(config, warnings)


def _fit(config: DNSConfig, warnings: list[tuple[str, str]]) -> tuple[DNSConfig, list[tuple[str, str]]]:
    """kubelet's formDNSConfigFitsLimits."""
    if len(config.servers) > MAX_NAMESERVERS:
        config.servers = config.servers[:MAX_NAMESERVERS]
        warnings.append(("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, "
                         f"the applied nameserver line is: {' '.join(config.servers)}"))
    searches = config.searches[:MAX_SEARCHES]
    cut = len(searches) < len(config.searches)
    kept = [s for s in searches if len(s) <= MAX_DOMAIN]
    cut = cut or len(kept) < len(searches)
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()
        cut = True
    config.searches = kept
    if cut:
        warnings.append(("DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, "
                         f"the applied search line is: {' '.join(kept)}"))
    return config, warnings


__all__ = ["DNSConfig", "parse_resolv_conf", "pod_dns"]
