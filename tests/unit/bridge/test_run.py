"""The bridge's threads: supervised restarts, waiting for credentials, and a stop that ends a blocked watch."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from edgeworkers.bridge import run
from edgeworkers.bridge.watcher import PodWatcher
from edgeworkers.config import Settings
from edgeworkers.kubeclient import ApiClient, ClusterAccess
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import MetaStore
from edgeworkers.privatefiles import write_private
from edgeworkers.status.manager import StatusManager
from tests.polling import wait_for
from tests.unit.fakehttp import Handler, Server, reply, servers, stream


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    with servers() as start:
        yield start


def test_a_crashed_loop_is_restarted_and_a_stopped_one_ends() -> None:
    stop, calls = threading.Event(), []

    def loop(stop: threading.Event) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("bug")
        if len(calls) == 2:
            return  # ended early: restarted too
        stop.wait()

    thread = run.supervise("test-loop", loop, stop, restart_delay_s=0.01)
    assert thread.name == "test-loop" and thread.daemon
    wait_for(lambda: len(calls) == 3, what="the third start")
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and calls == [0, 1, 2]


def test_waits_for_the_nodes_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "CREDENTIALS_POLL_S", 0.01)
    config, stop, found = Settings(cloud_data_dir=tmp_path, node_name="edge-1"), threading.Event(), []
    attempts: list[str] = []

    def bootstrap(config: Settings) -> bool:
        attempts.append(config.node_name)
        return False

    waiter = threading.Thread(target=lambda: found.append(run.wait_for_access(config, stop, bootstrap)), daemon=True)
    waiter.start()
    wait_for(lambda: len(attempts) >= 2, what="bootstrap attempts")
    node_dir = tmp_path / "nodes" / "edge-1"
    node_dir.mkdir(parents=True)
    # Whole or not at all, as the cloud writes it (write_private): a half-written file would be read as malformed.
    write_private(node_dir / "kubeconfig", yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "tok"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}).encode())
    waiter.join(timeout=5)
    assert found == [ClusterAccess("https://127.0.0.1:6443", "tok")]
    (node_dir / "kubeconfig").unlink()
    stop.set()
    assert run.wait_for_access(config, stop, bootstrap) is None


def test_a_first_start_against_the_embedded_cloud_issues_the_nodes_credentials(tmp_path: Path) -> None:
    config = Settings(cloud_data_dir=tmp_path / "cloud", node_name="edge-1")
    assert not run.issue_own_credentials(config)  # no cloud here: nothing to bootstrap from
    subprocess.run([str(Path(sys.executable).with_name("edgeworkers")), "kubeconfig"], check=True,
                   capture_output=True, env={**os.environ, "EDGEWORKERS_CLOUD_DATA_DIR": str(tmp_path / "cloud")})
    assert run.issue_own_credentials(config)
    access = run.access_from_settings(config)
    assert access is not None and access.token_file
    assert Path(access.token_file).read_text() != (tmp_path / "cloud" / "token").read_text()


def test_stop_ends_a_watch_blocked_in_its_read(serve: Callable[[Handler], Server], tmp_path: Path, fake_redis,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server: Server

    def cloud(req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        if "watch" not in query:
            reply(req, 200, {"kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": []})
        else:
            stream(req, [])
            server.release.wait(60)  # a quiet watch: the bridge blocks in its read

    server = serve(cloud)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "c"}}],
        "clusters": [{"name": "c", "cluster": {"server": server.url}}],
    }))
    mirrors = type("Mirrors", (), {"observe": lambda *a: None, "reconcile": lambda *a: None})()

    stop, apis = threading.Event(), []

    def loops(api: ApiClient) -> dict[str, run.Loop]:
        apis.append(api)
        store = MetaStore(fake_redis)
        watcher = PodWatcher(api, store, lambda m: None, "n", mirrors, StatusManager(store, Outbox(fake_redis)))
        return {"pod-watcher": watcher.run, "heartbeat": lambda stopped: stopped.wait()}

    bridge = threading.Thread(target=run.run_bridge, args=(Settings(kubeconfig=kubeconfig), stop, loops), daemon=True)
    bridge.start()
    wait_for(lambda: any(q.get("watch") for _, q, _ in server.requests), what="the watch")
    stop.set()
    bridge.join(timeout=3)
    assert not bridge.is_alive()
    assert not [t.name for t in threading.enumerate() if t.name in ("pod-watcher", "heartbeat")]
    assert len(apis) == 1


def test_the_bridge_imports_neither_the_actors_nor_the_cloud_nor_the_pod_models(tmp_path) -> None:
    """Layering and memory: a process running the bridge and the node's endpoint alone (`edgeworkers node serve`)
    must not declare the pod actors, carry the cloud API server, or load the pod models and their validation (about
    8 MiB it has no use for)."""
    heavy = ("edgeworkers.actors", "edgeworkers.cloud", "edgeworkers.k8s.pod", "edgeworkers.k8s.validation")
    code = ("import sys, edgeworkers.node.serve\n"
            "from edgeworkers import wiring\n"
            "from edgeworkers.config import Settings\n"
            f"wiring.bridge_loops(wiring.build(Settings(data_dir={str(tmp_path)!r})))(None)\n"
            f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
