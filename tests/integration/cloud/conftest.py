"""A real `edgeworkers cloud serve` per test module (fresh data dir, free port) and the real `kubectl` against it.

``cloud.kubectl(...)`` runs kubectl with the project's own kubeconfig (from `edgeworkers kubeconfig`) and a
fresh discovery ``--cache-dir``; ``cloud.api`` makes raw calls as the node would. ``edge_node`` runs
`edgeworkers node serve` for the test's node name, registered with that cloud. ``own_cloud`` and
``own_edge_node`` are the same for one test alone, which may stop and restart that cloud. Every process is
stopped by its PID. A node's bridge talks to the cloud as ``system:node:<name>``: on its first start it issues its
own credentials (``edgeworkers cloud issue-node-credentials``) into the cloud's data dir.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3

from edgeworkers.kubeclient import (
    ApiClient,
    ApiError,
    CloudUnavailable,
    load_kubeconfig,
)
from tests.polling import wait_for

EDGEWORKERS = str(Path(sys.executable).with_name("edgeworkers"))
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_process(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_file = log_path.open("ab")
    try:
        return subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log_file.close()


@dataclass
class Cloud:
    port: int
    data_dir: Path
    kubeconfig: Path
    cache_dir: Path
    env: dict[str, str]
    log_path: Path
    api: ApiClient
    process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start (or restart) the server on the same port and data dir; return once it serves."""
        process = self.process = start_process([EDGEWORKERS, "cloud", "serve"], self.env, self.log_path)

        def serving() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"cloud exited with {process.returncode}:\n{self.log_tail()}")
            try:
                self.api.get("/version")
                return True
            except (ApiError, CloudUnavailable):
                return False

        wait_for(serving, START_TIMEOUT_S, "the cloud to serve /version")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def kubectl_args(self, *args: str) -> list[str]:
        return ["kubectl", f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl to completion; with ``check``, a failure shows its stderr and the server's log."""
        result = subprocess.run(
            self.kubectl_args(*args), input=input, capture_output=True, text=True, timeout=timeout_s, env=self.env,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}\n"
                f"--- server log tail ---\n{self.log_tail()}"
            )
        return result

    def kubectl_popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.kubectl_args(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )

    wait_for = staticmethod(wait_for)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def issue_node_credentials(self, node: str, output_dir: Path | None = None) -> Path:
        """`edgeworkers cloud issue-node-credentials NODE`: the node's kubeconfig (a new token each time)."""
        extra = ["--output-dir", str(output_dir)] if output_dir else []
        out = subprocess.run([EDGEWORKERS, "cloud", "issue-node-credentials", node, *extra], env=self.env,
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return Path(out.strip())

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        try:
            return self.api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise


def cloud_env(port: int, data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The processes' environment: none of the caller's EDGEWORKERS_* settings, only these and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWORKERS_")}
    env.update({
        "EDGEWORKERS_CLOUD_HOST": "127.0.0.1",
        "EDGEWORKERS_CLOUD_PORT": str(port),
        "EDGEWORKERS_CLOUD_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        "EDGEWORKERS_REDIS_PASSWORD_FILE": "",  # the test Redis is open; the agent Redis's password stays unread
        "HOME": str(data_dir.parent),  # kubectl must not find the developer's own ~/.kube/config
        **(extra or {}),
    })
    env.pop("KUBECONFIG", None)
    return env


@contextmanager
def running_cloud(root: Path, env: dict[str, str] | None = None) -> Iterator[Cloud]:
    """A fresh cloud under ``root``: credentials and kubeconfig made by the project's own commands.

    ``env``: more settings (``EDGEWORKERS_*``) for the cloud and the nodes started with it.
    """
    port, data_dir = free_port(), root / "data"
    env = cloud_env(port, data_dir, env)
    kubeconfig_text = subprocess.run(
        [EDGEWORKERS, "kubeconfig"], env=env, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text)
    cloud = Cloud(port, data_dir, kubeconfig, root / "kube-cache", env, root / "cloud.log",
                  ApiClient(load_kubeconfig(kubeconfig_text)))
    try:
        cloud.start()
        yield cloud
    finally:
        cloud.stop()
        cloud.api.close()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One cloud for a test module."""
    with running_cloud(tmp_path_factory.mktemp("cloud")) as cloud:
        yield cloud


@pytest.fixture
def own_cloud(tmp_path: Path) -> Iterator[Cloud]:
    """A cloud for one test, which may stop and restart it."""
    root = tmp_path / "own-cloud"
    root.mkdir()
    with running_cloud(root) as cloud:
        yield cloud


@dataclass
class EdgeNode:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path


def node_request(cloud: Cloud, port: int, node: str, path: str, *, client: tuple[str, str] | None = None,
                 method: str = "GET", headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    """A request to a node's endpoint on 127.0.0.1 as the cloud dials it: by the node's name (its certificate names
    nothing else), trusting the kubelet-serving CA alone; with ``client`` (a certificate and key) shown."""
    pool = urllib3.HTTPSConnectionPool(
        "127.0.0.1", port, ca_certs=str(cloud.data_dir / "kubelet-serving-ca.crt"), server_hostname=node,
        assert_hostname=node, cert_file=client[0] if client else None, key_file=client[1] if client else None,
        timeout=5, retries=False)
    try:
        return pool.request(method, path, headers=headers)
    finally:
        pool.close()


def cloud_client(cloud: Cloud) -> tuple[str, str]:
    """The cloud's client certificate towards nodes (kube-apiserver's kubelet client)."""
    return str(cloud.data_dir / "kubelet-client.crt"), str(cloud.data_dir / "kubelet-client.key")


def node_healthz(cloud: Cloud, port: int, node: str) -> bool:
    """The node endpoint's /healthz, asked as the cloud asks (HTTPS, the cloud's client certificate): it answers no
    one else."""
    try:
        response = node_request(cloud, port, node, "/healthz", client=cloud_client(cloud))
    except urllib3.exceptions.HTTPError:
        return False
    return response.status == 200 and response.data == b"ok"


def node_env(cloud: Cloud, node_name: str, root: Path, redis_url: str, port: int) -> dict[str, str]:
    """The environment of `node serve` for ``node_name`` on ``port``, its data under ``root``."""
    return {
        **cloud.env,
        "EDGEWORKERS_NODE_NAME": node_name,
        "EDGEWORKERS_NODE_PORT": str(port),
        "EDGEWORKERS_DATA_DIR": str(root / "node"),
        "EDGEWORKERS_REDIS_URL": redis_url,
    }


@contextmanager
def running_node(cloud: Cloud, node_name: str, root: Path, redis_url: str) -> Iterator[EdgeNode]:
    """`edgeworkers node serve` for ``node_name``, waited for until the cloud sees it Ready with its lease.

    Its bridge writes MetaManager and pod tasks into ``redis_url`` (the test session's database): never the agent's
    own Redis, where a running agent's workers would start the test's pods."""
    port = free_port()
    env = node_env(cloud, node_name, root, redis_url, port)
    log_path = root / "node.log"
    process = start_process([EDGEWORKERS, "node", "serve"], env, log_path)
    try:
        def registered() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"node exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                node = cloud.api.get(f"/api/v1/nodes/{node_name}")
                cloud.api.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node_name}")
                healthy = node_healthz(cloud, port, node_name)
            except (ApiError, CloudUnavailable):
                return False
            conditions = (node.get("status") or {}).get("conditions") or []
            return healthy and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        wait_for(registered, START_TIMEOUT_S, f"node {node_name} to register")
        yield EdgeNode(node_name, port, process, log_path)
    finally:
        stop_process(process)


@pytest.fixture
def edge_node(cloud: Cloud, node_name: str, tmp_path: Path, redis_url: str) -> Iterator[EdgeNode]:
    with running_node(cloud, node_name, tmp_path, redis_url) as node:
        yield node


@pytest.fixture
def own_edge_node(own_cloud: Cloud, node_name: str, tmp_path: Path, redis_url: str) -> Iterator[EdgeNode]:
    with running_node(own_cloud, node_name, tmp_path, redis_url) as node:
        yield node
