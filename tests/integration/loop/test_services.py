"""A Service and the pods it selects, through the real kubectl and a real edge node: the cluster IP, the Endpoints and
EndpointSlices holding the pods' IPs as the node reports them, kept as a pod goes."""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from tests.integration.loop.conftest import Cluster, busybox_pod, manifest
from tests.polling import wait_for

SERVICE = "/api/v1/namespaces/default/services/web"


def web_pod(name: str) -> dict[str, Any]:
    pod = busybox_pod(name, f"echo {name} > /tmp/index.html; httpd -f -p 8080 -h /tmp")
    pod["metadata"]["labels"] = {"app": "web"}
    pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    return pod


def web_service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def endpoints_column(cluster: Cluster) -> str:
    """The ENDPOINTS column of `kubectl get endpoints web`."""
    header, row = cluster.kubectl("get", "endpoints", "web").stdout.splitlines()
    assert header.split() == ["NAME", "ENDPOINTS", "AGE"]
    return row.split()[1]


def test_a_service_gets_a_cluster_ip_and_endpoints_of_the_ready_pods_it_selects(cluster: Cluster) -> None:
    try:
        cluster.apply(web_service(), web_pod("web-a"), web_pod("web-b"))
        pods = cluster.wait_running("web-a", "web-b")
        ips = {name: pod["status"]["podIP"] for name, pod in pods.items()}
        assert all(ips.values()), ips

        svc = cluster.cloud.api.get(SERVICE)
        assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")
        header, row = cluster.kubectl("get", "svc", "web", "-o", "wide").stdout.splitlines()
        assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
        cells = row.split()
        assert (cells[:5], cells[6]) == (["web", "ClusterIP", svc["spec"]["clusterIP"], "<none>", "80/TCP"], "app=web")

        wanted = ",".join(sorted(f"{ip}:8080" for ip in ips.values()))
        wait_for(lambda: ",".join(sorted(endpoints_column(cluster).split(","))) == wanted, 30,
                 f"kubectl get endpoints web to show {wanted}")
        slices = cluster.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web").stdout.splitlines()
        assert slices[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
        (row,) = slices[1:]
        name, address_type, ports, endpoints, _age = row.split()
        assert name.startswith("web-") and (address_type, ports) == ("IPv4", "8080")
        assert set(endpoints.split(",")) == set(ips.values())

        described = cluster.kubectl("describe", "svc", "web").stdout
        assert re.search(rf"^IP:\s+{re.escape(svc['spec']['clusterIP'])}$", described, re.M), described
        assert re.search(r"^TargetPort:\s+http/TCP$", described, re.M), described
        endpoints_line = re.search(r"^Endpoints:\s+(\S+)$", described, re.M)
        assert endpoints_line and set(endpoints_line.group(1).split(",")) == {f"{ip}:8080" for ip in ips.values()}

        # Applied again with another port: a strategic merge patch, which keeps the allocated cluster IP.
        changed = web_service()
        changed["spec"]["ports"][0]["port"] = 81
        cluster.apply(changed)
        again = cluster.cloud.api.get(SERVICE)
        assert (again["spec"]["clusterIP"], again["spec"]["ports"][0]["port"]) == (svc["spec"]["clusterIP"], 81)
        moved = {**changed, "spec": {**changed["spec"], "clusterIP": "10.96.0.1"}}
        refused = cluster.kubectl("apply", "-f", "-", input=manifest(moved), check=False)
        assert refused.returncode == 1
        assert 'The Service "web" is invalid: spec.clusterIPs[0]: Invalid value: ["10.96.0.1"]: may not change once set' \
            in refused.stderr

        # No proxy or DNS yet: a pod reaches another at the address its Endpoints hold, on the node's Docker network.
        fetched = cluster.kubectl("exec", "web-b", "--", "wget", "-qO-", f"http://{ips['web-a']}:8080/").stdout
        assert fetched == "web-a\n"

        cluster.kubectl("delete", "pod", "web-a", "--timeout=60s", timeout_s=90)
        wait_for(lambda: endpoints_column(cluster) == f"{ips['web-b']}:8080", 30, "web-a to leave the endpoints")
        slice_body = cluster.cloud.api.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                                           {"labelSelector": "kubernetes.io/service-name=web"})["items"][0]
        assert [e["targetRef"]["name"] for e in slice_body["endpoints"]] == ["web-b"]
        assert slice_body["endpoints"][0]["nodeName"] == cluster.node
    finally:
        cluster.kubectl("delete", "service", "web", "--ignore-not-found", check=False)
    wait_for(lambda: "NotFound" in cluster.kubectl("get", "endpoints", "web", check=False).stderr, 30,
             "the Endpoints to go with the Service")
