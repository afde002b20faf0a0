"""The whole loop for one test: kubectl -> the real cloud -> the bridge -> Redis -> a worker -> Docker, and back.

``cluster`` runs `edgeworkers node serve` (the bridge, with its own free node port), `edgeworkers worker
--processes 1` and, once it exists, `edgeworkers scheduler` (the PLEG; image GC off, no metrics port) for the test's
unique node name, on the session's Redis database, against the package's shared cloud;
``own_cluster`` does the same against a cloud of its own, which the test may stop and restart (a test module sets
that cloud's environment by overriding the ``cloud_overrides`` fixture). Helpers stop, SIGKILL and restart each
process; every process is stopped by its PID. After the test the node's pods and its Node leave the cloud, its
containers leave Docker (``node_name``) and its keys leave Redis (``real_redis``).

The cloud's binder binds a pod without ``nodeName`` to the fewest-loaded Ready node: the shared cloud holds one
Node at a time (each test's Node is deleted after it), so such pods land on the test's node.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import redis
import yaml

from edgeworkers.config import Settings
from edgeworkers.constants import KEY_PLEG_LAST_RELIST
from edgeworkers.kubeclient import ApiError, CloudUnavailable
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.runtime import labels
from tests.integration.cloud.conftest import (
    EDGEWORKERS,
    START_TIMEOUT_S,
    Cloud,
    free_port,
    node_healthz,
    running_cloud,
    start_process,
    stop_process,
)
from tests.integration.queue.queuekit import Worker, worker_env
from tests.polling import wait_for

WORKER_READY = "Worker process is ready for action."
# The scheduler process (PLEG relist, probes, GC) arrives with its own issue: the loop runs it once it exists.
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
# How long the loop gets to bring a pod applied at the cloud to Running there (image local, grace small).
POD_TIMEOUT_S = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes minutes (a long cloud outage); -m 'not slow' skips it")


def busybox_pod(
    name: str, command: str = "sleep 3600", *, node: str | None = None, grace: int = 1, **spec: Any
) -> dict[str, Any]:
    """A busybox pod (``imagePullPolicy: Never``): ``sh -c command``, stopped with ``grace`` seconds. A grace above 0
    makes a delete at the cloud wait for the node's confirmation, as a real kubelet's does."""
    container = {"name": "app", "image": "busybox", "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
    body: dict[str, Any] = {"terminationGracePeriodSeconds": grace, "containers": [container], **spec}
    if node:
        body["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": body}


def manifest(*objects: dict[str, Any]) -> str:
    """One kubectl manifest holding ``objects``, as YAML documents."""
    return yaml.safe_dump_all(objects)


def running_at_cloud(pod: dict[str, Any] | None) -> bool:
    """The cloud shows the pod Running with every container running and ready (READY n/n)."""
    status = (pod or {}).get("status") or {}
    containers = status.get("containerStatuses") or []
    return status.get("phase") == "Running" and bool(containers) and all(
        c.get("ready") and "running" in (c.get("state") or {}) for c in containers
    )


def hold_for(condition: Callable[[], Any], seconds: float, what: str, interval_s: float = 0.5) -> None:
    """Check ``condition`` for ``seconds`` (the test's time passing): fail as soon as it is false."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            raise AssertionError(f"{what} stopped holding")
        time.sleep(interval_s)


@dataclass(frozen=True)
class Box:
    """One container as Docker lists it."""

    id: str
    labels: dict[str, str]
    status: str  # Docker's State: created, running, exited, ...


@dataclass
class Cluster:
    """The shared or own cloud plus one edge node (bridge + worker) on the test's Redis database."""

    cloud: Cloud
    config: Settings  # node name, Redis database, data dir of the node
    root: Path
    redis: redis.Redis
    docker: docker.DockerClient
    node_port: int
    bridge: subprocess.Popen | None = None
    worker: Worker | None = None
    scheduler: subprocess.Popen | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # more settings for the processes started from now on

    @property
    def node(self) -> str:
        return self.config.node_name

    @property
    def store(self) -> MetaStore:
        return MetaStore(self.redis)

    @property
    def bridge_log(self) -> Path:
        return self.root / "bridge.log"

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"

    @property
    def scheduler_log(self) -> Path:
        return self.root / "scheduler.log"

    def env(self) -> dict[str, str]:
        """The environment of every edge process: the cloud's address and credentials (its data dir), the node,
        its Redis database and data dir, a short broker heartbeat and task back-off (``queuekit.worker_env``)."""
        edge = {k: v for k, v in worker_env(self.config).items() if k.startswith("EDGEWORKERS_")}
        return {
            **self.cloud.env, **edge,
            "EDGEWORKERS_NODE_PORT": str(self.node_port),
            "EDGEWORKERS_METRICS_PORT": "0",  # the scheduler's: none (tests run side by side)
            "EDGEWORKERS_IMAGE_GC_HIGH_THRESHOLD_PERCENT": "100",  # never remove the images other tests use
            **self.extra_env,
        }

    # --- the bridge ----------------------------------------------------------------------------

    def start_bridge(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start `edgeworkers node serve`; return once it serves /healthz and has renewed the node's Lease."""
        assert self.bridge is None or self.bridge.poll() is not None, "the bridge runs already"
        since = datetime.now(UTC).replace(microsecond=0)
        process = self.bridge = start_process([EDGEWORKERS, "node", "serve"], self.env(), self.bridge_log)

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the bridge exited with {process.returncode}:\n{self.tail(self.bridge_log)}")
            return self.heartbeat_since(since) and self.bridge_healthy()

        wait_for(up, timeout_s, "the bridge to start and renew the node's lease")

    def stop_bridge(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.bridge is not None:
            stop_process(self.bridge)

    def kill_bridge(self) -> None:
        """SIGKILL: no goodbye to the cloud, nothing flushed."""
        assert self.bridge is not None and self.bridge.poll() is None, "the bridge is not running"
        self.bridge.kill()
        self.bridge.wait(10)

    def restart_bridge(self) -> None:
        self.stop_bridge()
        self.start_bridge()

    def bridge_healthy(self) -> bool:
        return node_healthz(self.cloud, self.node_port, self.node)

    def heartbeat_since(self, since: datetime) -> bool:
        """The cloud shows the Node Ready and its Lease renewed at or after ``since`` (wall clock, UTC)."""
        try:
            node = self.cloud.api.get(f"/api/v1/nodes/{self.node}")
            lease = self.cloud.api.get(f"{LEASES}/{self.node}")
        except (ApiError, CloudUnavailable):
            return False
        renewed = ((lease.get("spec") or {}).get("renewTime")) or ""
        return self.node_ready(node) == "True" and bool(renewed) and datetime.fromisoformat(renewed) >= since

    @staticmethod
    def node_ready(node: dict[str, Any]) -> str | None:
        """The status of the Node's Ready condition ("True", "False", "Unknown"; None when it has none)."""
        conditions = (node.get("status") or {}).get("conditions") or []
        return next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)

    # --- the worker ----------------------------------------------------------------------------

    def start_worker(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start `edgeworkers worker --processes 1 --threads 4` (its own process group); return once its worker
        process is ready."""
        assert self.worker is None or self.worker.process.poll() is not None, "the worker runs already"
        ready_before = self._worker_ready_lines()
        argv = [EDGEWORKERS, "worker", "--processes", "1", "--threads", "4"]
        with self.worker_log.open("ab") as out:
            process = subprocess.Popen(
                argv, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.worker = Worker(process, self.worker_log)

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the worker exited with {process.returncode}:\n{self.tail(self.worker_log)}")
            return self._worker_ready_lines() > ready_before

        wait_for(ready, timeout_s, "the worker to be ready")

    def _worker_ready_lines(self) -> int:
        return self.worker_log.read_text(errors="replace").count(WORKER_READY) if self.worker_log.exists() else 0

    def stop_worker(self) -> None:
        """SIGTERM to its process group (the dramatiq master and its worker process), SIGKILL after 30 s."""
        if self.worker is not None:
            self.worker.stop()

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()

    def restart_worker(self) -> None:
        self.stop_worker()
        self.start_worker()

    # --- the scheduler -------------------------------------------------------------------------

    def start_scheduler(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start `edgeworkers scheduler`; return once its PLEG has relisted."""
        assert self.scheduler is None or self.scheduler.poll() is not None, "the scheduler runs already"
        before = self.redis.get(KEY_PLEG_LAST_RELIST)
        process = self.scheduler = start_process([EDGEWORKERS, "scheduler"], self.env(), self.scheduler_log)

        def relisted() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the scheduler exited with {process.returncode}:\n{self.tail(self.scheduler_log)}")
            return self.redis.get(KEY_PLEG_LAST_RELIST) not in (None, before)

        wait_for(relisted, timeout_s, "the scheduler's first PLEG relist")

    def stop_scheduler(self) -> None:
        if self.scheduler is not None:
            stop_process(self.scheduler)

    # --- the cloud -----------------------------------------------------------------------------

    def stop_cloud(self) -> None:
        self.cloud.stop()

    def start_cloud(self) -> None:
        self.cloud.start()

    def kubectl(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self.cloud.kubectl(*args, **options)

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=manifest(*objects))

    def cloud_pod(self, name: str) -> dict[str, Any] | None:
        return self.cloud.pod(name)

    def cloud_pods(self) -> dict[str, dict[str, Any]]:
        """The pods the cloud has bound to this node, by name."""
        listed = self.cloud.api.get("/api/v1/pods", {"fieldSelector": f"spec.nodeName={self.node}"})
        return {pod["metadata"]["name"]: pod for pod in listed.get("items") or []}

    def wait_running(self, *names: str, timeout_s: float = POD_TIMEOUT_S) -> dict[str, dict[str, Any]]:
        """Wait until the cloud shows each pod Running and ready; return them by name."""

        def all_running() -> dict[str, dict[str, Any]] | None:
            pods = {name: self.cloud_pod(name) for name in names}
            return pods if all(running_at_cloud(pod) for pod in pods.values()) else None

        return wait_for(all_running, timeout_s, f"pods {', '.join(names)} Running at the cloud")

    def wait_pod(self, name: str, predicate: Callable[[dict[str, Any]], Any], timeout_s: float, what: str
                 ) -> dict[str, Any]:
        """Wait until the cloud's pod ``name`` satisfies ``predicate``; return it."""

        def check() -> dict[str, Any] | None:
            pod = self.cloud_pod(name)
            return pod if pod is not None and predicate(pod) else None

        return wait_for(check, timeout_s, what)

    def node_object(self) -> dict[str, Any]:
        return self.cloud.api.get(f"/api/v1/nodes/{self.node}")

    def wait_gone(self, name: str, timeout_s: float = POD_TIMEOUT_S) -> None:
        """Wait until pod ``name`` has left the cloud and every one of its containers has left Docker."""
        wait_for(lambda: self.cloud_pod(name) is None and not self.containers(name), timeout_s,
                 f"pod {name} gone from the cloud and from Docker")

    # --- Docker --------------------------------------------------------------------------------

    def containers(self, pod: str | None = None) -> list[Box]:
        """The node's containers (every state), of pod ``pod`` when given: one Docker list call, so a container
        removed meanwhile is simply absent (inspecting each, as ``containers.list`` does, races with removal)."""
        filters = [f"{labels.NODE}={self.node}"] + ([f"{labels.POD_NAME}={pod}"] if pod else [])
        listed = self.docker.api.containers(all=True, filters={"label": filters})
        return [Box(entry["Id"], entry["Labels"] or {}, entry["State"]) for entry in listed]

    def exit_code(self, box: Box) -> int | None:
        """The exit code of an ended container (None when it is gone or still running)."""
        try:
            state = self.docker.api.inspect_container(box.id)["State"]
        except docker.errors.NotFound:
            return None
        return None if state.get("Running") else state.get("ExitCode")

    def running_ids(self, pod: str) -> dict[str, str]:
        """The running containers of ``pod`` (its sandbox ``POD`` included): container name -> Docker id."""
        return {c.labels[labels.CONTAINER_NAME]: c.id for c in self.containers(pod) if c.status == "running"}

    def running_pods(self) -> set[str]:
        """The names of the pods with a running app container on this node."""
        return {
            c.labels[labels.POD_NAME] for c in self.containers()
            if c.status == "running" and c.labels.get(labels.CONTAINER_TYPE) == labels.TYPE_APP
        }

    # --- edge CLI ------------------------------------------------------------------------------

    def edgeworkers(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run an `edgeworkers` command with the node's environment; a failure shows its output."""
        result = subprocess.run([EDGEWORKERS, *args], env=self.env(), input=input, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, f"edgeworkers {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        return result

    # --- logs and teardown ---------------------------------------------------------------------

    @staticmethod
    def tail(path: Path, lines: int = 40) -> str:
        if not path.exists():
            return f"({path.name}: no output)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def logs(self) -> str:
        """The end of every process's log, for failure messages."""
        return "\n".join(
            f"--- {name} ---\n{self.tail(path)}"
            for name, path in (("cloud", self.cloud.log_path), ("bridge", self.bridge_log), ("worker", self.worker_log),
                               ("scheduler", self.scheduler_log))
        )

    def close(self) -> None:
        """Stop the edge processes; remove the node's pods (at once) and its Node from a running cloud."""
        self.stop_bridge()
        self.stop_scheduler()
        self.stop_worker()
        if self.cloud.process is None or self.cloud.process.poll() is not None:
            return
        try:
            for name in self.cloud_pods():
                try:
                    self.cloud.api.delete(f"/api/v1/namespaces/default/pods/{name}", {"gracePeriodSeconds": 0})
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            self.cloud.api.delete(f"/api/v1/nodes/{self.node}")
        except ApiError as exc:
            if exc.code != 404:
                raise


@contextmanager
def running_cluster(
    cloud: Cloud, config: Settings, root: Path, client: redis.Redis, docker_client: docker.DockerClient,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """The worker, the scheduler, then the bridge, started for ``config``'s node against ``cloud``
    with ``extra_env`` in their environment; all stopped after."""
    cluster = Cluster(cloud, config, root, client, docker_client, free_port(), extra_env=dict(extra_env or {}))
    try:
        cluster.start_worker()
        cluster.start_scheduler()
        cluster.start_bridge()
        yield cluster
    finally:
        cluster.close()
        print(cluster.logs())  # pytest shows it when the test failed


@pytest.fixture(scope="package")
def shared_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One cloud for the package's tests that never stop it."""
    with running_cloud(tmp_path_factory.mktemp("loop-cloud")) as cloud:
        yield cloud


@pytest.fixture
def cloud_overrides() -> dict[str, str]:
    """Extra environment of ``own_cluster``'s cloud (a module overrides this fixture to set some)."""
    return {}


@contextmanager
def core_api(cluster: Cluster) -> Iterator[Any]:
    """The official Python client's CoreV1Api, with the cloud's administrator kubeconfig."""
    import kubernetes  # the official client: for tests only (the edge never imports it)

    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(cluster.cloud.kubeconfig), client_configuration=configuration)
    with kubernetes.client.ApiClient(configuration) as api:
        yield kubernetes.client.CoreV1Api(api)


@pytest.fixture
def core(cluster: Cluster) -> Iterator[Any]:
    with core_api(cluster) as api:
        yield api


@pytest.fixture
def node_overrides() -> dict[str, str]:
    """Extra environment of ``own_cluster``'s node processes (a module overrides this fixture to set some)."""
    return {}


@pytest.fixture
def own_cloud(tmp_path: Path, cloud_overrides: dict[str, str]) -> Iterator[Cloud]:
    """A cloud for one test, which may stop and restart it, started with ``cloud_overrides`` in its environment."""
    root = tmp_path / "own-cloud"
    root.mkdir()
    with running_cloud(root, cloud_overrides) as cloud:
        yield cloud


@pytest.fixture
def cluster(
    shared_cloud: Cloud, real_settings: Settings, tmp_path: Path, real_redis: redis.Redis,
    docker_client: docker.DockerClient,
) -> Iterator[Cluster]:
    with running_cluster(shared_cloud, real_settings, tmp_path, real_redis, docker_client) as started:
        yield started


@pytest.fixture
def own_cluster(
    own_cloud: Cloud, real_settings: Settings, tmp_path: Path, real_redis: redis.Redis,
    docker_client: docker.DockerClient, node_overrides: dict[str, str],
) -> Iterator[Cluster]:
    with running_cluster(own_cloud, real_settings, tmp_path, real_redis, docker_client, node_overrides) as started:
        yield started
