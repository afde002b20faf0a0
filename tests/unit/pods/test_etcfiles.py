"""The pod's resolv.conf and hosts files written in its directory and mounted (pods/etcfiles.py)."""
from __future__ import annotations

from pathlib import Path

from edgeworkers.pods.etcfiles import NodeDNS, write_etc_files
from edgeworkers.runtime.types import Mount
from tests.unit.pods.podkit import make_pod


def node(tmp_path: Path, **fields) -> NodeDNS:
    (tmp_path / "node-resolv.conf").write_text("nameserver 10.0.0.2\nsearch lan.example\n")
    (tmp_path / "node-hosts").write_text("127.0.0.1 localhost edge-1\n")
    return NodeDNS(tmp_path / "node-resolv.conf", node_hosts=tmp_path / "node-hosts", **fields)


def test_both_files_are_written_and_mounted(tmp_path: Path) -> None:
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    mounts, warnings = write_etc_files(pod_dir, make_pod(), "172.17.0.5", node(tmp_path))
    assert mounts == [Mount(str(pod_dir / "resolv.conf"), "/etc/resolv.conf"),
                      Mount(str(pod_dir / "etc-hosts"), "/etc/hosts")]
    assert (pod_dir / "resolv.conf").read_text() == "nameserver 10.0.0.2\nsearch lan.example\n"
    assert (pod_dir / "etc-hosts").read_text().endswith("172.17.0.5\tweb\n")
    assert [reason for reason, _ in warnings] == ["MissingClusterDNS"]


def test_an_unchanged_file_is_not_rewritten_a_changed_one_is_replaced_whole(tmp_path: Path) -> None:
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    write_etc_files(pod_dir, make_pod(), "172.17.0.5", node(tmp_path))
    before = (pod_dir / "etc-hosts").stat().st_ino
    write_etc_files(pod_dir, make_pod(), "172.17.0.5", node(tmp_path))
    assert (pod_dir / "etc-hosts").stat().st_ino == before
    write_etc_files(pod_dir, make_pod(), "172.17.0.6", node(tmp_path))
    assert (pod_dir / "etc-hosts").stat().st_ino != before
    assert (pod_dir / "etc-hosts").read_text().endswith("172.17.0.6\tweb\n")
    assert sorted(p.name for p in pod_dir.iterdir()) == ["etc-hosts", "resolv.conf"]


def test_no_ip_keeps_the_runtimes_hosts_and_host_network_takes_the_nodes(tmp_path: Path) -> None:
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    mounts, _ = write_etc_files(pod_dir, make_pod(), None, node(tmp_path))
    assert [m.container_path for m in mounts] == ["/etc/resolv.conf"]
    mounts, warnings = write_etc_files(pod_dir, make_pod(hostNetwork=True), None, node(tmp_path))
    assert [m.container_path for m in mounts] == ["/etc/resolv.conf", "/etc/hosts"] and warnings == []
    assert (pod_dir / "etc-hosts").read_text() == ("# Kubernetes-managed hosts file (host network).\n"
                                                   "127.0.0.1 localhost edge-1\n")


def test_an_unreadable_node_resolv_conf_gives_an_empty_one(tmp_path: Path) -> None:
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    write_etc_files(pod_dir, make_pod(dnsPolicy="Default"), "172.17.0.5", NodeDNS(tmp_path / "missing"))
    assert (pod_dir / "resolv.conf").read_text() == ""
