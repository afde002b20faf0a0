"""A pod's resolv.conf as kubelet's dns.go makes it (pods/dns.py) and its managed /etc/hosts (pods/hosts.py)."""
from __future__ import annotations

from edgeworkers.pods.dns import DNSConfig, parse_resolv_conf, pod_dns
from edgeworkers.pods.hosts import host_network_hosts, hostname_and_domain, managed_hosts
from tests.unit.pods.podkit import make_pod

NODE = parse_resolv_conf("# the node's\nnameserver 10.0.0.2\nnameserver 10.0.0.3 ; a comment\n"
                         "search old.example\nsearch lan.example. .\noptions ndots:2 timeout:1\noptions ndots:3\n")
MISSING = ('pod: "web_default(uid-1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using '
           '"ClusterFirst" policy. Falling back to "Default" policy.')


def test_the_nodes_resolv_conf_is_parsed_as_kubelet_does() -> None:
    assert NODE == DNSConfig(["10.0.0.2", "10.0.0.3"], ["lan.example"], ["ndots:3", "timeout:1"])


def test_cluster_first_without_cluster_dns_falls_back_to_default_with_a_warning() -> None:
    config, warnings = pod_dns(make_pod(), NODE, [], "cluster.local")
    assert config == NODE and warnings == [("MissingClusterDNS", MISSING)]


def test_cluster_first_with_cluster_dns() -> None:
    config, warnings = pod_dns(make_pod(namespace="shop"), NODE, ["10.96.0.10"], "cluster.local")
    assert config.render() == ("nameserver 10.96.0.10\n"
                               "search shop.svc.cluster.local svc.cluster.local cluster.local lan.example\n"
                               "options ndots:5\n")
    assert warnings == []


def test_a_host_network_pod_takes_the_nodes_unless_cluster_first_with_host_net() -> None:
    assert pod_dns(make_pod(hostNetwork=True), NODE, ["10.96.0.10"], "cluster.local") == (NODE, [])
    config, _ = pod_dns(make_pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), NODE, ["10.96.0.10"], "c.l")
    assert config.servers == ["10.96.0.10"]


def test_none_is_only_the_dns_config() -> None:
    pod = make_pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"], "searches": ["ns1.svc.example"],
                                                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    config, warnings = pod_dns(pod, NODE, [], "cluster.local")
    assert config.render() == "nameserver 1.1.1.1\nsearch ns1.svc.example\noptions ndots:2 edns0\n"
    assert warnings == []


def test_the_dns_config_is_merged_into_default() -> None:
    pod = make_pod(dnsPolicy="Default", dnsConfig={"nameservers": ["10.0.0.3", "1.1.1.1"], "searches": ["a.example"],
                                                   "options": [{"name": "ndots", "value": "1"}, {"name": "rotate"}]})
    config, _ = pod_dns(pod, NODE, [], "cluster.local")
    assert config == DNSConfig(["10.0.0.2", "10.0.0.3", "1.1.1.1"], ["lan.example", "a.example"],
                               ["ndots:1", "timeout:1", "rotate"])


def test_the_resolvers_limits_cut_servers_and_searches_with_warnings() -> None:
    long = [f"{'d' * 60}-{i}.example" for i in range(40)]
    pod = make_pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"],
                                                "searches": long})
    config, warnings = pod_dns(pod, NODE, [], "cluster.local")
    assert config.servers == ["1.1.1.1", "1.0.0.1", "8.8.8.8"]
    assert config.searches == long[:28] and len(" ".join(config.searches)) <= 2048
    assert [reason for reason, _ in warnings] == ["DNSConfigForming", "DNSConfigForming"]
    assert warnings[0][1].endswith("the applied nameserver line is: 1.1.1.1 1.0.0.1 8.8.8.8")
    assert warnings[1][1].startswith("Search Line limits were exceeded, some search paths have been omitted")


def test_managed_hosts_with_subdomain_and_aliases() -> None:
    pod = make_pod(name="web-0", hostname="db", subdomain="backend", namespace="shop",
                   hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}])
    assert hostname_and_domain(pod, "cluster.local") == ("db", "backend.shop.svc.cluster.local")
    assert managed_hosts(pod, ["172.17.0.5"], "cluster.local") == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
        "172.17.0.5\tdb.backend.shop.svc.cluster.local\tdb\n"
        "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")


def test_the_hostname_is_the_pods_name_cut_as_kubelet_cuts_it() -> None:
    pod = make_pod(name="a" * 62 + "-b")
    assert hostname_and_domain(pod, "cluster.local") == ("a" * 62, "")
    assert managed_hosts(make_pod(), ["10.0.0.9"], "cluster.local").endswith("fe00::2\tip6-allrouters\n10.0.0.9\tweb\n")


def test_a_host_network_pods_hosts_is_the_nodes_with_its_aliases() -> None:
    pod = make_pod(hostNetwork=True, hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo"]}])
    assert host_network_hosts(pod, "127.0.0.1 localhost\n") == (
        "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
        "\n# Entries added by HostAliases.\n10.1.2.3\tfoo\n")
