"""A pod's ``/etc/hosts`` as kubelet manages it (pkg/kubelet/kubelet_pods.go: managedHostsFileContent,
nodeHostsFileContent): localhost lines, the pod's IPs with its hostname (``hostname.subdomain.<ns>.svc.<domain>``
first when ``subdomain`` is set), then the ``hostAliases``; a host-network pod gets the node's own file with the
aliases after it."""
from __future__ import annotations

from edgeworkers.k8s.pod import Pod

MANAGED_HEADER = "# Kubernetes-managed hosts file.\n"
HOST_NETWORK_HEADER = "# Kubernetes-managed hosts file (host network).\n"
LOCALHOST = ("127.0.0.1\tlocalhost\n"
             "::1\tlocalhost ip6-localhost ip6-loopback\n"
             "fe00::0\tip6-localnet\n"
             "fe00::0\tip6-mcastprefix\n"
             "fe00::1\tip6-allnodes\n"
             "fe00::2\tip6-allrouters\n")  # fmt: skip
MAX_HOSTNAME = 63


def hostname_and_domain(pod: Pod, cluster_domain: str) -> tuple[str, str]:
    """kubelet's GeneratePodHostNameAndDomain: ``spec.hostname`` (else the pod's name) cut to 63 characters without a
    trailing '-' or '.', and ``<subdomain>.<namespace>.svc.<cluster domain>`` when ``spec.subdomain`` is set."""
    hostname = (pod.spec.hostname or pod.metadata.name or "")[:MAX_HOSTNAME].rstrip("-.")
    domain = ""
    if pod.spec.subdomain:
        domain = f"{pod.spec.subdomain}.{pod.metadata.namespace or 'default'}.svc.{cluster_domain}"
    return hostname, domain


def _aliases(pod: Pod) -> str:
    aliases = [a for a in pod.spec.host_aliases or [] if isinstance(a, dict)]
    if not aliases:
        return ""
    lines = "".join(f"{a.get('ip', '')}\t{chr(9).join(str(h) for h in a.get('hostnames') or [])}\n" for a in aliases)
    return "\n# Entries added by HostAliases.\n" + lines


def managed_hosts(pod: Pod, pod_ips: list[str], cluster_domain: str) -> str:
    """The hosts file of a pod on its own network."""
    hostname, domain = hostname_and_domain(pod, cluster_domain)
    names = f"{hostname}.{domain}\t{hostname}" if domain else hostname
    return MANAGED_HEADER + LOCALHOST + "".join(f"{ip}\t{names}\n" for ip in pod_ips) + _aliases(pod)


def host_network_hosts(pod: Pod, node_hosts: str) -> str:
    """The hosts file of a host-network pod: the node's, then the pod's aliases."""
    return HOST_NETWORK_HEADER + node_hosts + _aliases(pod)


__all__ = ["host_network_hosts", "hostname_and_domain", "managed_hosts"]
