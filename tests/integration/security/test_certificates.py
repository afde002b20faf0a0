"""Certificates at the trust boundary, with the real kubectl and `node serve`: a node's certificate cannot pose as the
cloud; a revoked node is refused; a node renews its credentials through the API and keeps serving; a client
certificate is a person's identity; an inline key never reaches the disk, even when its process is SIGKILLed."""
from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgeworkers.kubeclient import load_kubeconfig
from tests.integration.cloud.conftest import (
    EDGEWORKERS,
    Cloud,
    EdgeNode,
    cloud_client,
    free_port,
    node_env,
    running_cloud,
    running_node,
    start_process,
    stop_process,
)
from tests.polling import wait_for

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def node_dir(cloud: Cloud, node: str) -> Path:
    return cloud.data_dir / "nodes" / node


def kubectl_with(cloud: Cloud, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={cloud.cache_dir}", *args],
                          capture_output=True, text=True, timeout=60, env=cloud.env, check=False)


@contextmanager
def impostor(cert: Path, key: Path) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """An HTTPS server showing ``cert``, recording the headers of every request that reaches it."""
    seen: list[dict[str, str]] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_kubectl_pinned_to_the_clouds_ca_refuses_a_server_showing_a_node_certificate(
        cloud: Cloud, edge_node: EdgeNode, tmp_path: Path) -> None:
    """A node's key (a revoked node's included) cannot pose as the API server to collect the administrator's token."""
    directory = node_dir(cloud, edge_node.name)
    with impostor(directory / "node.crt", directory / "node.key") as (port, seen):
        config = yaml.safe_load(cloud.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
        kubeconfig = tmp_path / "pointed-at-the-impostor"
        kubeconfig.write_text(yaml.safe_dump(config))
        # By address: it names no address of the cloud (nor 127.0.0.1, which names every machine).
        by_address = kubectl_with(cloud, kubeconfig, "get", "pods")
        assert by_address.returncode != 0
        assert "tls: failed to verify certificate: x509: cannot validate certificate for 127.0.0.1" in \
            by_address.stderr, by_address.stderr
        # By the name it does hold: its CA is not the one kubectl trusts for the API server.
        by_name = kubectl_with(cloud, kubeconfig, f"--tls-server-name={edge_node.name}", "get", "pods")
        assert by_name.returncode != 0
        assert "x509: certificate signed by unknown authority" in by_name.stderr, by_name.stderr
    assert seen == []  # not one request, so no token, reached it


def test_a_revoked_nodes_certificate_and_token_are_refused(cloud: Cloud, edge_node: EdgeNode) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"logs-{edge_node.name}"},
           "spec": {"nodeName": edge_node.name, "containers": [{"name": "app", "image": "busybox"}]}}
    name = pod["metadata"]["name"]
    cloud.api.post("/api/v1/namespaces/default/pods", pod)
    try:
        # The cloud reaches the node: its endpoint answers that it runs no such container.
        reached = cloud.kubectl("logs", name, check=False)
        assert "Error from server (NotFound)" in reached.stderr and "is not available" in reached.stderr
        node_kubeconfig = node_dir(cloud, edge_node.name) / "kubeconfig"
        assert kubectl_with(cloud, node_kubeconfig, "get", "pods").returncode == 0
        subprocess.run([EDGEWORKERS, "cloud", "revoke-node-credentials", edge_node.name], env=cloud.env,
                       check=True, capture_output=True, timeout=30)
        refused = cloud.kubectl("logs", name, check=False)  # the node still serves its (revoked) certificate
        assert refused.returncode != 0
        assert "serving certificate is revoked, replaced or unknown" in refused.stderr, refused.stderr
        assert "is not available" not in refused.stderr
        unauthorized = kubectl_with(cloud, node_kubeconfig, "get", "pods")
        assert "You must be logged in to the server (Unauthorized)" in unauthorized.stderr
    finally:
        cloud.api.delete(f"/api/v1/namespaces/default/pods/{name}", {"gracePeriodSeconds": 0})


def served_certificate(cloud: Cloud, node: EdgeNode) -> bytes:
    """The DER of the certificate the node's endpoint shows now, to a caller dialling it as the cloud does."""
    tls = ssl.create_default_context(cafile=str(cloud.data_dir / "kubelet-serving-ca.crt"))
    tls.load_cert_chain(*cloud_client(cloud))
    with socket.create_connection(("127.0.0.1", node.port), 5) as raw, \
            tls.wrap_socket(raw, server_hostname=node.name) as connection:
        der = connection.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_a_node_past_its_renewal_point_renews_through_the_api_and_keeps_serving(
        tmp_path: Path, node_name: str, redis_url: str) -> None:
    root = tmp_path / "short"
    root.mkdir()
    with running_cloud(root, {"EDGEWORKERS_CREDENTIAL_LIFETIME_S": "30"}) as cloud, \
            running_node(cloud, node_name, tmp_path, redis_url) as node:
        directory = node_dir(cloud, node_name)
        first = x509.load_pem_x509_certificate((directory / "node.crt").read_bytes())
        first_token = (directory / "token").read_text()
        wait_for(lambda: "renewed this node's credentials" in node.log_path.read_text(), 40,
                 "the node's renewal through the API")
        renewed = x509.load_pem_x509_certificate((directory / "node.crt").read_bytes())
        assert renewed.serial_number != first.serial_number and (directory / "token").read_text() != first_token
        wait_for(lambda: served_certificate(cloud, node) == renewed.public_bytes(serialization.Encoding.DER), 10,
                 "the endpoint serving its renewed certificate")
        # Past the first credentials' end, the node still heartbeats (its new token) and the cloud reads from it
        # (its new certificate).
        wait_for(lambda: datetime.now(UTC) > first.not_valid_after_utc, 40, "the first credentials to expire")
        since = datetime.now(UTC).replace(microsecond=0)

        def heartbeat() -> bool:
            renew_time = cloud.api.get(f"{LEASES}/{node_name}")["spec"].get("renewTime") or ""
            return bool(renew_time) and datetime.fromisoformat(renew_time) >= since

        wait_for(heartbeat, 30, "a Lease renewal with the renewed token")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "renewed"},
               "spec": {"nodeName": node_name, "containers": [{"name": "app", "image": "busybox"}]}}
        cloud.api.post("/api/v1/namespaces/default/pods", pod)
        reached = cloud.kubectl("logs", "renewed", check=False)
        assert "is not available" in reached.stderr, reached.stderr  # the node's own answer


def test_kubectl_with_a_client_certificate_is_the_certificates_user(cloud: Cloud, tmp_path: Path) -> None:
    admin = tmp_path / "admin-cert"
    subprocess.run([EDGEWORKERS, "kubeconfig", "--client-certificate", "--output", str(admin)], env=cloud.env,
                   check=True, capture_output=True, timeout=30)
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    user = yaml.safe_load(admin.read_text())["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}
    listed = kubectl_with(cloud, admin, "get", "namespaces", "-o", "name")
    assert listed.returncode == 0 and "namespace/default" in listed.stdout, listed.stderr
    # Another person's certificate: its common name is the user the cloud authorizes, its organization a group.
    alice = tmp_path / "alice"
    subprocess.run([EDGEWORKERS, "kubeconfig", "--client-certificate", "--user", "alice", "--group", "devs",
                    "-o", str(alice)], env=cloud.env, check=True, capture_output=True, timeout=30)
    forbidden = kubectl_with(cloud, alice, "get", "pods")
    assert ('Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group '
            '"" in the namespace "default"') in forbidden.stderr, forbidden.stderr
    # A certificate cannot claim a node's identity.
    node = subprocess.run([EDGEWORKERS, "kubeconfig", "--client-certificate", "--user", "system:node:edge-x"],
                          env=cloud.env, capture_output=True, text=True, timeout=30, check=False)
    assert node.returncode != 0
    assert "nodes authenticate with their own credentials" in " ".join(re.sub("[│╭╮╰╯─]", " ", node.stderr).split())


def open_files(pid: int) -> list[str]:
    """What process ``pid``'s descriptors point at."""
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with suppress(FileNotFoundError):
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return links


def test_no_file_holds_an_inline_key_after_a_sigkill(cloud: Cloud, node_name: str, tmp_path: Path,
                                                     redis_url: str) -> None:
    """A bridge whose kubeconfig carries ``client-key-data`` keeps the key in an anonymous memory file: nothing in the
    temporary directory while it runs, nothing anywhere after it is SIGKILLed."""
    kubeconfig = tmp_path / "creds" / "kubeconfig"
    kubeconfig.parent.mkdir(mode=0o700)
    subprocess.run([EDGEWORKERS, "kubeconfig", "--client-certificate", "-o", str(kubeconfig)], env=cloud.env,
                   check=True, capture_output=True, timeout=30)
    key = load_kubeconfig(kubeconfig.read_text()).key_data
    assert key
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**node_env(cloud, node_name, tmp_path, redis_url, free_port()), "TMPDIR": str(temp),
           "EDGEWORKERS_KUBECONFIG": str(kubeconfig)}
    log_path = tmp_path / "node.log"
    process = start_process([EDGEWORKERS, "node", "serve"], env, log_path)
    try:
        def in_memory() -> bool:
            assert process.poll() is None, log_path.read_text()
            return any(link.startswith("/memfd:edgeworkers-kubeclient-key") for link in open_files(process.pid))

        wait_for(in_memory, 30, "the bridge's client holding its key in memory")
        wait_for(lambda: "node registered" in log_path.read_text(), 30, "the bridge talking to the cloud")
        assert list(temp.iterdir()) == []
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        stop_process(process)
    assert list(temp.iterdir()) == []
    holding = [path for path in tmp_path.rglob("*") if path.is_file() and path != kubeconfig
               and key in path.read_bytes()]
    assert holding == []
    cloud.api.delete(f"/api/v1/nodes/{node_name}")
