"""ops/services and ops/down --all, run for real on a copy of ops/ with Redis servers on free ports.

dockerd is already up on any machine that runs these tests, so the copy finds it answering and leaves it alone.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def checkout(tmp_path: Path):
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "ops", root / "ops", ignore=shutil.ignore_patterns("bench"))
    env = {
        **os.environ,
        "EDGEWORKERS_AGENT_REDIS_PORT": str(free_port()),
        "EDGEWORKERS_TEST_REDIS_PORT": str(free_port()),
        "EDGEWORKERS_LOG_DIR": str(tmp_path / "log"),
        "EDGEWORKERS_STATE_DIR": str(tmp_path / "state"),
    }
    yield root, env
    subprocess.run([root / "ops" / "down", "--all"], env=env, capture_output=True, timeout=60)


def ops(root: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([root / "ops" / argv[0], *argv[1:]], env=env, capture_output=True, text=True, timeout=120)


def client(env: dict[str, str], name: str) -> redis.Redis:
    return redis.Redis(port=int(env[f"EDGEWORKERS_{name}_REDIS_PORT"]), socket_timeout=5)


def test_services_start_both_redis_servers_once_and_down_all_stops_only_those(checkout) -> None:
    root, env = checkout
    first = ops(root, env, "services")
    assert first.returncode == 0, first.stderr
    assert "dockerd answers" in first.stderr
    pids = {name: (root / ".run" / f"{name}-redis.pid").read_text() for name in ("agent", "test")}

    agent, test = client(env, "AGENT"), client(env, "TEST")
    assert agent.config_get("appendonly") == {"appendonly": "yes"}
    assert agent.config_get("dir") == {"dir": str(Path(env["EDGEWORKERS_STATE_DIR"]) / "redis")}
    assert test.config_get("databases") == {"databases": "256"}
    assert test.config_get("save") == {"save": ""}
    assert test.config_get("appendonly") == {"appendonly": "no"}

    second = ops(root, env, "services")
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("answers") == 3
    assert {name: (root / ".run" / f"{name}-redis.pid").read_text() for name in pids} == pids
    assert not (root / ".run" / "dockerd.pid").exists()

    down = ops(root, env, "down", "--all")
    assert down.returncode == 0, down.stderr
    for server in (agent, test):
        with pytest.raises(redis.ConnectionError):
            server.ping()
    assert not list((root / ".run").glob("*.pid"))
    assert subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def test_down_refuses_unknown_arguments(checkout) -> None:
    root, env = checkout
    down = ops(root, env, "down", "--everything")
    assert down.returncode != 0
    assert "usage: ops/down [--all]" in down.stderr
