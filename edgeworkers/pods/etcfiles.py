"""The pod's own ``/etc/resolv.conf`` and ``/etc/hosts`` (``pods.dns``, ``pods.hosts``), written in its directory
(``resolv.conf``, ``etc-hosts``) and bind-mounted into each of its containers, as kubelet mounts its managed
``etc-hosts``. A file is rewritten only when its text changes (a new sandbox's IP), by a rename, so a container never
reads half a file. A pod without an IP (no network) keeps the runtime's hosts file, as kubelet does.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from edgeworkers.config import Settings
from edgeworkers.k8s.pod import Pod
from edgeworkers.pods.dns import DNSConfig, parse_resolv_conf, pod_dns
from edgeworkers.pods.hosts import host_network_hosts, managed_hosts
from edgeworkers.runtime.types import Mount

log = logging.getLogger(__name__)

RESOLV_CONF, ETC_HOSTS = "resolv.conf", "etc-hosts"
FILE_MODE = 0o644
NODE_HOSTS = Path("/etc/hosts")
SYSTEMD_RESOLVED_STUB = "127.0.0.53"
SYSTEMD_RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")


@dataclass(frozen=True)
class NodeDNS:
    """What the node knows of DNS: its resolv.conf (kubelet's --resolv-conf), the cluster's DNS servers
    (--cluster-dns; none: ClusterFirst falls back to Default) and domain (--cluster-domain)."""

    resolv_conf: Path = Path("/etc/resolv.conf")
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    node_hosts: Path = NODE_HOSTS

    @classmethod
    def from_settings(cls, settings: Settings) -> NodeDNS:
        return cls(Path(settings.resolv_conf), tuple(settings.cluster_dns), settings.cluster_domain)

    def host_config(self) -> DNSConfig:
        """The node's resolv.conf, parsed; systemd-resolved's upstream file instead of its stub (127.0.0.53, which no
        pod on its own network reaches), as kubeadm points kubelet at it. Empty (logged) when unreadable."""
        try:
            config = parse_resolv_conf(self.resolv_conf.read_text())
            if config.servers == [SYSTEMD_RESOLVED_STUB] and SYSTEMD_RESOLVED_UPSTREAM.is_file():
                config = parse_resolv_conf(SYSTEMD_RESOLVED_UPSTREAM.read_text())
        except OSError as exc:
            log.warning("cannot read the node's resolv.conf %s: %s", self.resolv_conf, exc.strerror)
            return DNSConfig()
        return config


def _write(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except FileNotFoundError:
        pass
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.chmod(temporary, FILE_MODE)
    os.replace(temporary, path)


def write_etc_files(
    pod_dir: Path, pod: Pod, pod_ip: str | None, node: NodeDNS
) -> tuple[list[Mount], list[tuple[str, str]]]:
    """Write the pod's resolv.conf and hosts files under ``pod_dir``; the mounts that show them to its containers and
    the DNS warnings (reason, message) to record. OSError when a file cannot be written."""
    config, warnings = pod_dns(pod, node.host_config(), list(node.cluster_dns), node.cluster_domain)
    _write(pod_dir / RESOLV_CONF, config.render())
    mounts = [Mount(str(pod_dir / RESOLV_CONF), "/etc/resolv.conf")]
    hosts = None
    if pod.spec.host_network:
        try:
            hosts = host_network_hosts(pod, node.node_hosts.read_text())
        except OSError as exc:
            log.warning("pod %s: cannot read the node's hosts file %s: %s", pod.key, node.node_hosts, exc.strerror)
    elif pod_ip:
        hosts = managed_hosts(pod, [pod_ip], node.cluster_domain)
    if hosts is not None:
        _write(pod_dir / ETC_HOSTS, hosts)
        mounts.append(Mount(str(pod_dir / ETC_HOSTS), "/etc/hosts"))
    return mounts, warnings


__all__ = ["NodeDNS", "write_etc_files"]
