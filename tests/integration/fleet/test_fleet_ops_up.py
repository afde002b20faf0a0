"""`ops/up --lite --nodes 2` for real: the project's own cloud and two lite agents under the one supervisor, on free
ports, a private Redis of the test's (as the agent's Redis: password required) and data dirs under the test's tmp dir;
each node Ready under its own name, running the pod bound to it from its own Redis database; `ops/down` stops them all.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis

from edgeworkers.runtime import labels
from tests.integration.loop.conftest import busybox_pod, manifest
from tests.integration.test_ops_up import REPO, free_port, make_root, run, supervised, wait_gone
from tests.polling import wait_for


@pytest.fixture
def agent_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A Redis of the test's own on a free port, requiring the password in the returned file (0600)."""
    port, secret = free_port(), tmp_path / "secrets" / "redis-password"
    secret.parent.mkdir(mode=0o700)
    secret.write_text(secrets.token_hex(16))
    secret.chmod(0o600)
    config = tmp_path / "secrets" / "redis.conf"
    config.write_text(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {tmp_path}\n"
                      f"requirepass {secret.read_text()}\n")
    config.chmod(0o600)
    server = subprocess.Popen(["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=secret.read_text())
    try:
        wait_for(lambda: _pings(client), 10, "the test's Redis to answer")
        yield port, secret
    finally:
        client.close()
        server.terminate()
        server.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_up_with_two_lite_nodes_runs_each_as_its_own_node_and_down_stops_them(
        tmp_path: Path, agent_redis: tuple[int, Path], docker_client: docker.DockerClient) -> None:
    redis_port, password_file = agent_redis
    root = tmp_path / "checkout"
    root.mkdir()
    make_root(root, (REPO / "Procfile").read_text())
    command = root / ".venv" / "bin" / "edgeworkers"
    command.unlink()
    command.symlink_to(REPO / ".venv" / "bin" / "edgeworkers")  # the real one, not the stand-in
    (root / "Procfile.lite").write_text((REPO / "Procfile.lite").read_text())
    name = f"test-{uuid.uuid4().hex[:10]}"
    nodes = [f"{name}-1", f"{name}-2"]
    with (root / "ops" / "edgeworkers.env").open("a") as env:
        env.write(f"EDGEWORKERS_NODE_NAME={name}\nEDGEWORKERS_REDIS_URL=redis://127.0.0.1:{redis_port}/0\n"
                  f"EDGEWORKERS_DATA_DIR={tmp_path}/data\nEDGEWORKERS_CLOUD_DATA_DIR={tmp_path}/cloud\n"
                  f"EDGEWORKERS_NODE_PORT={free_port()}\nEDGEWORKERS_METRICS_PORT=0\n"
                  "EDGEWORKERS_IMAGE_GC_HIGH_THRESHOLD_PERCENT=100\n")
    env = {"EDGEWORKERS_AGENT_REDIS_PORT": str(redis_port), "EDGEWORKERS_REDIS_PASSWORD_FILE": str(password_file),
           "HOME": str(tmp_path)}
    kubeconfig = root / ".run" / "kubeconfig"

    def kubectl(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path}/kube-cache", *args],
                              input=stdin, capture_output=True, text=True, check=True, timeout=60).stdout

    try:
        up = run(root, "up", "--lite", "--nodes", "2", env=env)

        assert up.returncode == 0, up.stderr + (root / ".run" / "edgeworkers.log").read_text()[-3000:]
        assert f"Nodes: {' '.join(nodes)}" in up.stdout
        assert sorted(supervised(root)) == ["agent-1", "agent-2", "cloud"]
        listed = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
        assert sorted(n["metadata"]["name"] for n in listed) == nodes
        kubectl("apply", "-f", "-", stdin=manifest(*(busybox_pod(f"on-{i}", node=node) for i, node in enumerate(nodes))))

        def running() -> bool:
            pods = json.loads(kubectl("get", "pods", "-o", "json"))["items"]
            return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

        wait_for(running, 60, "both pods Running")
        for i, node in enumerate(nodes):
            boxes = docker_client.api.containers(filters={"label": f"{labels.NODE}={node}"})
            assert {box["Labels"][labels.POD_NAME] for box in boxes} == {f"on-{i}"}
            assert (tmp_path / "data" / "nodes" / node).is_dir()
        # Each node's MetaManager holds its own pod, in its own database; none uses the single node's.
        sizes = []
        for db in (0, 1, 2):
            with redis.Redis(port=redis_port, db=db, password=password_file.read_text()) as client:
                sizes.append(client.dbsize())
        assert sizes[0] == 0 and sizes[1] > 0 and sizes[2] > 0

        processes = list(supervised(root).values())
        assert run(root, "down", env=env).returncode == 0
        assert wait_gone(processes) == []
    finally:
        if (root / ".run" / "supervisor.pid").exists():
            run(root, "down", env=env)
        for node in nodes:
            for container in docker_client.containers.list(all=True, filters={"label": f"{labels.NODE}={node}"}):
                container.remove(force=True)
