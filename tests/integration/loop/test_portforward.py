"""``kubectl port-forward`` and the official client's port-forward, through the cloud to a pod on the real node;
and who may not."""
from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from kubernetes.client import CoreV1Api
from kubernetes.stream import portforward

from edgeworkers.runtime import labels
from tests.credentials import kubeconfig_token
from tests.integration.cloud.conftest import free_port, node_request, stop_process
from tests.integration.loop.conftest import Cluster, busybox_pod, core_api
from tests.polling import wait_for

PAGE = "hello through the tunnel"
WEB = f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.fixture
def web(cluster: Cluster) -> Cluster:
    cluster.apply(busybox_pod("web", WEB))
    cluster.wait_running("web")
    return cluster


def curl(port: int) -> str:
    result = subprocess.run(["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{port}/index.html"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def forwarded(web: Cluster) -> Iterator[int]:
    """``kubectl port-forward pod/web <port>:80`` running; its local port."""
    port = free_port()
    process = web.cloud.kubectl_popen("port-forward", "pod/web", f"{port}:80")
    try:
        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"kubectl port-forward exited: {process.communicate()}")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 30, "kubectl port-forward to listen")
        yield port
        assert process.poll() is None, f"kubectl port-forward exited: {process.communicate()}"
    finally:
        stop_process(process)


def test_kubectl_port_forward_serves_the_pods_page(forwarded: int) -> None:
    assert curl(forwarded).strip() == PAGE
    assert curl(forwarded).strip() == PAGE  # a second connection on the same session


def test_kubectl_port_forward_carries_several_connections_at_once(forwarded: int) -> None:
    with ThreadPoolExecutor(5) as pool:
        pages = list(pool.map(lambda _: curl(forwarded), range(5)))
    assert [page.strip() for page in pages] == [PAGE] * 5


def test_kubectl_port_forward_to_a_closed_port_reports_the_error(web: Cluster) -> None:
    port = free_port()
    process = web.cloud.kubectl_popen("port-forward", "pod/web", f"{port}:81")
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30, "kubectl port-forward to listen")
        subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{port}/"], capture_output=True,
                       timeout=30, check=False)
        stop_process(process)
        _, stderr = process.communicate()
        assert "connection refused" in stderr, stderr
    finally:
        stop_process(process)


@pytest.fixture
def core(web: Cluster) -> Iterator[CoreV1Api]:
    with core_api(web) as api:
        yield api


def test_python_client_port_forward_fetches_the_page(core: CoreV1Api) -> None:
    forward = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports="80")
    sock = forward.socket(80)
    sock.setblocking(True)
    sock.settimeout(20)
    sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    sock.close()
    assert received.startswith(b"HTTP/1.")
    assert received.rstrip().endswith(PAGE.encode())
    assert forward.error(80) is None
    forward.close()


def test_port_forward_to_a_pod_without_an_address_is_refused_not_sent_to_the_host(web: Cluster,
                                                                                   core: CoreV1Api) -> None:
    """A sandbox that lost its address (taken off Docker's network): the node refuses the connection rather than
    forwarding it to its own 127.0.0.1, where a listener on the same port waits in vain."""
    host_listener = socket.create_server(("127.0.0.1", 0))
    host_listener.settimeout(1.0)
    port = host_listener.getsockname()[1]
    sandbox = next(box for box in web.containers("web") if box.labels[labels.CONTAINER_TYPE] == labels.TYPE_SANDBOX)
    web.docker.networks.get("bridge").disconnect(sandbox.id)
    try:
        forward = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports=str(port))
        sock = forward.socket(port)
        sock.settimeout(20)
        with contextlib.suppress(OSError):
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        error = wait_for(lambda: forward.error(port), 20, "the connection's error")
        assert f"error forwarding port {port} to pod default/web: the pod has no IP address on this node" in error
        with pytest.raises(TimeoutError):
            host_listener.accept()  # nothing reached the node's own loopback
        forward.close()
    finally:
        host_listener.close()


def node_token(cluster: Cluster, node: str) -> str:
    """The bearer token of node ``node``'s identity (``system:node:<node>``): the one the bridge uses for the test's
    node, a new one for another."""
    path = cluster.cloud.data_dir / "nodes" / node / "kubeconfig"
    if not path.exists():
        path = cluster.cloud.issue_node_credentials(node)
    return kubeconfig_token(path)


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v4.channel.k8s.io"}


def test_port_forward_refuses_anonymous_and_node_identities(web: Cluster) -> None:
    url = f"https://127.0.0.1:{web.cloud.port}/api/v1/namespaces/default/pods/web/portforward?ports=80"
    ca = str(web.cloud.data_dir / "ca.crt")
    assert requests.get(url, headers=UPGRADE, verify=ca, timeout=10).status_code == 401
    for node in (web.node, f"{web.node}-other"):  # not even the pod's own node may
        as_node = requests.get(url, headers={**UPGRADE, "Authorization": f"Bearer {node_token(web, node)}"},
                               verify=ca, timeout=10)
        assert as_node.status_code == 403, as_node.text
        assert f'User "system:node:{node}" cannot create resource "pods/portforward"' in as_node.json()["message"]


def test_node_endpoint_refuses_a_caller_without_the_clouds_certificate(web: Cluster) -> None:
    response = node_request(web.cloud, web.node_port, web.node, "/portForward/default/web?port=80", headers=UPGRADE)
    assert response.status == 401


def established_on_port_80(cluster: Cluster) -> int:
    """TCP connections established to the pod's port 80, as the pod sees them (busybox netstat in its app)."""
    app = cluster.docker.containers.get(cluster.running_ids("web")["app"])
    output = app.exec_run(["netstat", "-tn"]).output.decode()
    return sum(1 for line in output.splitlines() if ":80 " in line and "ESTABLISHED" in line)


def test_killing_kubectl_mid_connection_ends_the_pods_connection(web: Cluster) -> None:
    port = free_port()
    process = web.cloud.kubectl_popen("port-forward", "pod/web", f"{port}:80")
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30, "kubectl port-forward to listen")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
            held.sendall(b"GET /index.html HTTP/1.1\r\n")  # half a request: httpd waits for the rest
            wait_for(lambda: established_on_port_80(web) == 1, 30, "the pod to hold the forwarded connection")
            process.kill()
            process.wait(10)
            wait_for(lambda: established_on_port_80(web) == 0, 30, "the pod's connection to end with the client")
    finally:
        stop_process(process)


def test_kubectls_plain_spdy_fallback_gets_a_clear_error(web: Cluster) -> None:
    port = free_port()
    result = subprocess.run(web.cloud.kubectl_args("port-forward", "pod/web", f"{port}:80"), capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**web.cloud.env, "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"})
    assert result.returncode != 0
    assert "SPDY upgrades are not supported" in result.stderr, result.stderr


def test_a_node_that_is_offline_is_a_clear_error_not_a_hang(web: Cluster) -> None:
    web.stop_bridge()
    port = free_port()
    process = web.cloud.kubectl_popen("port-forward", "pod/web", f"{port}:80")
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30, "kubectl port-forward to listen")
        subprocess.run(["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{port}/"], capture_output=True,
                       timeout=30, check=False)
        _, stderr = process.communicate(timeout=30)  # kubectl ends the session after the error
        assert f"node {web.node} is not reachable" in stderr, stderr
    finally:
        stop_process(process)
