"""ops/services and ops/down --all, run for real on a copy of ops/ with Redis servers on free ports.

dockerd is already up on any machine that runs these tests, so the copy finds it answering and leaves it alone.
"""
from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis

from edgeworkers.process import AGENT_OOM_SCORE_ADJ, node_oom_score_floor

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


def password_file(env: dict[str, str]) -> Path:
    return Path(env["EDGEWORKERS_STATE_DIR"]) / "secrets" / "redis-password"


def client(env: dict[str, str], name: str) -> redis.Redis:
    """A client of the copy's agent (with the password ops/services made) or test Redis (open)."""
    password = password_file(env).read_text().strip() if name == "AGENT" else None
    return redis.Redis(port=int(env[f"EDGEWORKERS_{name}_REDIS_PORT"]), password=password, socket_timeout=5)


def test_services_start_both_redis_servers_once_and_down_all_stops_only_those(checkout) -> None:
    root, env = checkout
    first = ops(root, env, "services")
    assert first.returncode == 0, first.stderr
    assert "dockerd answers" in first.stderr
    pids = {name: (root / ".run" / f"{name}-redis.pid").read_text() for name in ("agent", "test")}

    agent, test = client(env, "AGENT"), client(env, "TEST")
    assert agent.config_get("appendonly") == {"appendonly": "yes"}
    # A memory cap that refuses writes when reached, never evicting the node's desired state.
    assert agent.config_get("maxmemory*") == {"maxmemory": str(256 * 1024 * 1024), "maxmemory-policy": "noeviction",
                                              "maxmemory-samples": "5", "maxmemory-eviction-tenacity": "10",
                                              "maxmemory-clients": "0"}
    assert agent.config_get("dir") == {"dir": str(Path(env["EDGEWORKERS_STATE_DIR"]) / "redis")}
    assert test.config_get("databases") == {"databases": "256"}
    assert test.config_get("save") == {"save": ""}
    assert test.config_get("appendonly") == {"appendonly": "no"}
    with pytest.raises(redis.AuthenticationError):  # the agent's Redis refuses a caller without its password
        redis.Redis(port=int(env["EDGEWORKERS_AGENT_REDIS_PORT"]), socket_timeout=5).ping()
    secrets = password_file(env).parent
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in secrets.iterdir()} == \
        {"redis-password": 0o600, "agent-redis.conf": 0o600}
    assert stat.S_IMODE((root / ".run").stat().st_mode) == 0o700
    # kubelet's own score for the store of the node's desired state (where the kernel lets it be lowered).
    assert agent.config_get("oom-score-adj*") == {"oom-score-adj": "absolute", "oom-score-adj-values": "-999 -999 800"}
    score = Path(f"/proc/{pids['agent'].strip()}/oom_score_adj").read_text()
    assert int(score) == max(AGENT_OOM_SCORE_ADJ, node_oom_score_floor())

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


FAKE_DOCKER = '#!/bin/sh\n[ "$1" = info ] && [ -n "$FAKE_DOCKERD_UP" ] && [ -e "$FAKE_DOCKERD_UP" ]\n'
# Writes its --pidfile, runs a `containerd` child in its process group that notes a SIGTERM, answers
# `docker info` after a second; on SIGTERM it stops that child itself a second later, as dockerd stops its
# containerd once its containers are stopped.
FAKE_DOCKERD_SLOW = """#!/bin/sh
echo $$ >"$2"
sh -c 'trap "echo TERM >>$FAKE_CONTAINERD_LOG; exit 0" TERM; while :; do sleep 1; done' &
child=$!
trap 'sleep 1; kill -KILL $child; exit 0' TERM
sleep 1
touch "$FAKE_DOCKERD_UP"
while :; do sleep 1; done
"""
FAKE_DOCKERD_BROKEN = '#!/bin/sh\necho "failed to start daemon: iptables not found" >&2\nexit 1\n'


def with_fake_docker(tmp_path: Path, env: dict[str, str], dockerd: str) -> dict[str, str]:
    """`docker` and `dockerd` stand-ins first on PATH: no dockerd answers until the stand-in starts one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("dockerd", dockerd)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {
        **env, "PATH": f"{bin_dir}:{env['PATH']}",
        "FAKE_DOCKERD_UP": str(tmp_path / "dockerd-up"), "FAKE_CONTAINERD_LOG": str(tmp_path / "containerd.log"),
    }


def test_services_start_dockerd_when_none_answers_and_down_all_lets_it_stop_its_children(checkout, tmp_path) -> None:
    root, env = checkout
    env = with_fake_docker(tmp_path, env, FAKE_DOCKERD_SLOW)

    started = ops(root, env, "services")

    assert started.returncode == 0, started.stderr
    assert "starting dockerd" in started.stderr
    dockerd = int((root / ".run" / "dockerd.pid").read_text())
    assert Path(f"/proc/{dockerd}/comm").read_text().strip() == "dockerd"
    again = ops(root, env, "services")
    assert "dockerd answers" in again.stderr

    down = ops(root, env, "down", "--all")
    assert down.returncode == 0, down.stderr
    assert "stopping dockerd" in down.stderr
    assert not Path(f"/proc/{dockerd}").exists() or Path(f"/proc/{dockerd}/stat").read_text().split()[2] == "Z"
    assert not Path(env["FAKE_CONTAINERD_LOG"]).exists()  # its containerd was left to dockerd, not signalled


def test_services_report_a_dockerd_that_exits_at_once_without_waiting_out_the_deadline(checkout, tmp_path: Path) -> None:
    root, env = checkout
    env = with_fake_docker(tmp_path, env, FAKE_DOCKERD_BROKEN)

    begun = time.monotonic()
    failed = ops(root, env, "services")

    assert failed.returncode != 0
    assert "dockerd (pid" in failed.stderr and "is not answering" in failed.stderr
    assert "failed to start daemon: iptables not found" in failed.stderr
    assert time.monotonic() - begun < 30


def test_an_agent_redis_left_open_by_an_earlier_version_gets_its_password_keeping_its_data(checkout) -> None:
    root, env = checkout
    port = env["EDGEWORKERS_AGENT_REDIS_PORT"]
    (root / ".run").mkdir(exist_ok=True)
    subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", port, "--daemonize", "yes", "--save", "",
                    "--pidfile", str(root / ".run" / "agent-redis.pid")], check=True, timeout=30)
    open_redis = redis.Redis(port=int(port), socket_timeout=5)
    for _ in range(100):
        try:
            open_redis.set("desired", "kept")
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    started = ops(root, env, "services")
    assert started.returncode == 0, started.stderr
    assert "answers without a password: setting its password" in started.stderr
    with pytest.raises(redis.AuthenticationError):
        open_redis.ping()
    assert client(env, "AGENT").get("desired") == b"kept"
    assert password_file(env).read_text().strip() not in started.stderr + started.stdout
