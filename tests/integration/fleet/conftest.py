"""Several real edge nodes against one real cloud: the fixture of the multi-node tests (placement, node lifecycle,
DaemonSets, Deployments, Jobs).

``fleet`` (one test) is a ``Fleet``: the module's cloud (``fleet_cloud``: `edgeworkers cloud serve` on a free port with
its own data dir, a node-monitor grace period of ``GRACE_S``) and ``fleet_size`` nodes (3; override the ``fleet_size``
fixture in a module or parametrize it indirectly). Each node is one lite `edgeworkers agent` (the real bridge, periodic
jobs, Dramatiq worker threads and Docker runtime in one process: the cheapest edge that runs all the real code), held in
a ``LiteCluster`` (the loop's ``Cluster``: ``.node``, ``.containers()``, ``.running_pods()``, ``.cloud_pods()``, ...)
with its own
- node name ``<test-unique>-1``, ``-2``, ... (the ``io.edgeworkers.node`` label of its containers, removed by it),
- database on the test Redis (``claimed_database``), data dir, node endpoint port,
- heartbeat every ``HEARTBEAT_S`` s (under ``GRACE_S``: a healthy node never turns Unknown between two).

Use::

    def test_spread(fleet: Fleet) -> None:
        one, two, three = fleet.nodes
        fleet.apply(busybox_pod("p", node=two.node))          # tests.integration.loop.conftest.busybox_pod
        fleet.wait_running("p")
        assert "p" in two.running_pods()                      # its container, labelled with node two, runs
        fleet.kubectl("get", "pods", "-o", "wide")            # the real kubectl, the cloud's admin kubeconfig
        fleet.kill(two)                                       # SIGKILL its agent (fleet.stop: SIGTERM)
        fleet.wait_node_ready(two, "Unknown")                 # within GRACE_S and a few seconds
        fleet.start(two)                                      # back, Ready, lease renewed
        four = fleet.add()                                    # a node that joins later (fleet.add(2): two more)

After the test every agent is stopped, each node's pods and Node leave the cloud, its containers leave Docker (by
label) and its Redis database is emptied. A module sets more of the cloud's environment by overriding
``fleet_cloud_env`` (module scope), more of the nodes' by overriding ``fleet_node_env``.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import docker
import pytest
import redis

from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiError
from edgeworkers.runtime import labels
from tests.conftest import claimed_database
from tests.integration.cloud.conftest import Cloud, free_port, running_cloud
from tests.integration.lite.conftest import LiteCluster
from tests.integration.loop.conftest import POD_TIMEOUT_S, manifest
from tests.polling import wait_for

HEARTBEAT_S = 2  # the nodes' lease and status period (EDGEWORKERS_NODE_STATUS_UPDATE_FREQUENCY_S)
GRACE_S = 10  # the cloud's node-monitor grace period: a node silent this long turns Ready=Unknown


@pytest.fixture(scope="module")
def fleet_cloud_env() -> dict[str, str]:
    """The fleet cloud's settings (a module overrides this fixture to add some)."""
    return {"EDGEWORKERS_NODE_MONITOR_GRACE_PERIOD_S": str(GRACE_S), "EDGEWORKERS_NODE_MONITOR_PERIOD_S": "1"}


@pytest.fixture(scope="module")
def fleet_cloud(tmp_path_factory: pytest.TempPathFactory, fleet_cloud_env: dict[str, str]) -> Iterator[Cloud]:
    """One cloud for the module's fleets (each test's nodes leave it after the test)."""
    with running_cloud(tmp_path_factory.mktemp("fleet-cloud"), fleet_cloud_env) as cloud:
        yield cloud


@pytest.fixture
def fleet_size() -> int:
    """How many nodes ``fleet`` starts with (override it, or parametrize it with ``indirect=True``)."""
    return 3


@pytest.fixture
def fleet_node_env() -> dict[str, str]:
    """More settings for every node of ``fleet`` (a module overrides this fixture to add some)."""
    return {}


class Fleet:
    """The cloud and its nodes; see the module's docstring."""

    def __init__(self, cloud: Cloud, root: Path, docker_client: docker.DockerClient, node_env: dict[str, str]) -> None:
        self.cloud, self.root, self.docker = cloud, root, docker_client
        self.prefix = f"test-{uuid.uuid4().hex[:10]}"
        self.nodes: list[LiteCluster] = []
        self._node_env = {"EDGEWORKERS_NODE_STATUS_UPDATE_FREQUENCY_S": str(HEARTBEAT_S), **node_env}
        self._resources = ExitStack()

    # --- nodes -----------------------------------------------------------------------------------

    def add(self, count: int = 1) -> LiteCluster:
        """Start ``count`` more nodes (at once); return the last. Each is Ready at the cloud, its lease renewed."""
        made = [self._make_node() for _ in range(count)]
        with ThreadPoolExecutor(len(made)) as pool:
            list(pool.map(lambda node: node.start_agent(), made))
        return made[-1]

    def _make_node(self) -> LiteCluster:
        name = f"{self.prefix}-{len(self.nodes) + 1}"
        root = self.root / name
        root.mkdir()
        redis_url = self._resources.enter_context(claimed_database())
        client = redis.Redis.from_url(redis_url)
        self._resources.callback(client.close)
        config = Settings(node_name=name, redis_url=redis_url, data_dir=root / "data",
                          cloud_data_dir=self.cloud.data_dir)
        node = LiteCluster(self.cloud, config, root, client, self.docker, free_port(), extra_env=dict(self._node_env))
        self.nodes.append(node)
        return node

    def node(self, name: str) -> LiteCluster:
        return next(node for node in self.nodes if node.node == name)

    @property
    def names(self) -> list[str]:
        return [node.node for node in self.nodes]

    def stop(self, node: LiteCluster) -> None:
        """SIGTERM the node's agent (SIGKILL after 30 s); its containers run on."""
        node.stop_worker()

    def kill(self, node: LiteCluster) -> None:
        """SIGKILL the node's agent: no goodbye to the cloud; its containers run on."""
        node.kill_worker()

    def start(self, node: LiteCluster) -> None:
        """Start a stopped node's agent again; return once the cloud sees it Ready with a renewed lease."""
        node.start_agent()

    def node_ready(self, node: LiteCluster | str) -> str | None:
        """The status of the Node's Ready condition at the cloud ("True", "False", "Unknown")."""
        name = node if isinstance(node, str) else node.node
        return LiteCluster.node_ready(self.cloud.api.get(f"/api/v1/nodes/{name}"))

    def wait_node_ready(self, node: LiteCluster | str, status: str, timeout_s: float = GRACE_S + 30) -> None:
        wait_for(lambda: self.node_ready(node) == status, timeout_s, f"node {node} Ready={status}")

    # --- the cloud -------------------------------------------------------------------------------

    def kubectl(self, *args: str, **options: Any) -> Any:
        """The real kubectl with the cloud's administrator kubeconfig (``Cloud.kubectl``)."""
        return self.cloud.kubectl(*args, **options)

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=manifest(*objects))

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.cloud.pod(name, namespace)

    def wait_running(self, *names: str, timeout_s: float = POD_TIMEOUT_S) -> dict[str, dict[str, Any]]:
        """Wait until the cloud shows each pod Running and ready; return them by name."""
        return self.nodes[0].wait_running(*names, timeout_s=timeout_s)

    def placement(self, namespace: str = "default") -> dict[str, str]:
        """Pod name -> the node the cloud bound it to ("" when unbound), for the pods of ``namespace``."""
        listed = self.cloud.api.get(f"/api/v1/namespaces/{namespace}/pods")
        return {pod["metadata"]["name"]: (pod.get("spec") or {}).get("nodeName") or "" for pod in listed["items"]}

    def running_pods(self) -> dict[str, set[str]]:
        """Node name -> the pods with a running app container labelled with that node, from Docker."""
        return {node.node: node.running_pods() for node in self.nodes}

    # --- teardown --------------------------------------------------------------------------------

    def logs(self) -> str:
        return "\n".join(f"=== {node.node} ===\n{node.logs()}" for node in self.nodes)

    @staticmethod
    def _close_node(node: LiteCluster) -> None:
        try:
            node.close()
        except ApiError:  # the cloud refused one delete: ``close`` removes its containers all the same
            pass

    def close(self) -> None:
        """Stop every agent, remove its pods and Node from the cloud, its containers from Docker (by label), and
        empty its Redis database."""
        with self._resources:
            if self.nodes:
                with ThreadPoolExecutor(len(self.nodes)) as pool:  # at once: each waits for its agent to stop
                    list(pool.map(self._close_node, self.nodes))
            for node in self.nodes:
                filters = {"label": f"{labels.NODE}={node.node}"}
                for container in self.docker.containers.list(all=True, filters=filters):
                    container.remove(force=True)


@pytest.fixture
def fleet(
    fleet_cloud: Cloud, fleet_size: int, fleet_node_env: dict[str, str], tmp_path: Path,
    docker_client: docker.DockerClient,
) -> Iterator[Fleet]:
    """``fleet_size`` nodes, each Ready at the module's cloud; all gone after the test."""
    made = Fleet(fleet_cloud, tmp_path, docker_client, fleet_node_env)
    try:
        made.add(fleet_size)
        yield made
    finally:
        made.close()
        print(made.logs())  # pytest shows it when the test failed
