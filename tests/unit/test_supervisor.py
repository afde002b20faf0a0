"""The supervisor's pure parts (restart back-off, how a Procfile command is run, a process's identity) and its log;
tests/integration/test_ops_up.py runs it under ops/up (restarts, watchdog, leftovers)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeworkers.supervisor import LOG_BACKUPS, MAX_DELAY_S, node_env, restart_delay, shell_command, start_time
from tests.polling import wait_for


@pytest.mark.parametrize(("failures", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, MAX_DELAY_S),
                                                 (50, MAX_DELAY_S)])
def test_a_process_that_keeps_failing_waits_twice_as_long_each_time_up_to_the_maximum(failures: int,
                                                                                      delay: float) -> None:
    assert restart_delay(failures) == delay


@pytest.mark.parametrize(("command", "run"), [
    (".venv/bin/edgeworkers agent --no-worker", "exec .venv/bin/edgeworkers agent --no-worker"),
    ("exec sleep 600", "exec sleep 600"),
    ("echo ready; exec sleep 600", "echo ready; exec sleep 600"),
    ("trap '' TERM && sleep 1", "trap '' TERM && sleep 1"),
    ("echo $HOME", "echo $HOME"),
])
def test_a_simple_command_replaces_the_shell_so_its_pid_is_the_programs(command: str, run: str) -> None:
    assert shell_command(command) == run


def test_a_process_is_named_by_its_pid_and_start_time() -> None:
    assert start_time(os.getpid()) == start_time(os.getpid()) is not None
    child = subprocess.Popen(["true"])
    child.wait()
    assert start_time(child.pid) is None


def test_the_processes_output_goes_to_a_rotated_log_prefixed_with_their_names(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("chatty: seq 1 2000; exec sleep 600\n")
    log = tmp_path / "edgeworkers.log"
    supervisor = subprocess.Popen([sys.executable, "-m", "edgeworkers.supervisor", "--procfile", str(procfile),
                                   "--run-dir", str(tmp_path), "--log-bytes", "4000"])
    try:
        wait_for(lambda: log.exists() and "chatty | 2000" in log.read_text(), 10, "the last line logged")
    finally:
        supervisor.terminate()
        supervisor.wait(30)
    logs = sorted(tmp_path.glob("edgeworkers.log*"))
    assert [p.name for p in logs] == ["edgeworkers.log", *(f"edgeworkers.log.{i}" for i in range(1, LOG_BACKUPS + 1))]
    assert all(p.stat().st_size <= 4000 for p in logs)
    oldest_first = [tmp_path / f"edgeworkers.log.{i}" for i in range(LOG_BACKUPS, 0, -1)] + [log]
    lines = [line.split(" ", 1)[1] for p in oldest_first for line in p.read_text().splitlines()]
    numbers = [int(line.removeprefix("chatty | ")) for line in lines if line.startswith("chatty | ")]
    assert numbers == list(range(numbers[0], 2001))  # line by line, in order, none lost across the rotations


SINGLE = {"EDGEWORKERS_NODE_NAME": "box", "EDGEWORKERS_REDIS_URL": "redis://127.0.0.1:6379/0",
          "EDGEWORKERS_DATA_DIR": "/var/lib/edgeworkers", "EDGEWORKERS_NODE_PORT": "10350",
          "EDGEWORKERS_METRICS_PORT": "10356"}


@pytest.mark.parametrize(("index", "want"), [
    (1, {"EDGEWORKERS_NODE_NAME": "box-1", "EDGEWORKERS_REDIS_URL": "redis://127.0.0.1:6379/1",
         "EDGEWORKERS_DATA_DIR": "/var/lib/edgeworkers/nodes/box-1", "EDGEWORKERS_NODE_PORT": "10350",
         "EDGEWORKERS_METRICS_PORT": "10356"}),
    (3, {"EDGEWORKERS_NODE_NAME": "box-3", "EDGEWORKERS_REDIS_URL": "redis://127.0.0.1:6379/3",
         "EDGEWORKERS_DATA_DIR": "/var/lib/edgeworkers/nodes/box-3", "EDGEWORKERS_NODE_PORT": "10370",
         "EDGEWORKERS_METRICS_PORT": "10376"}),
])
def test_each_node_of_several_gets_its_name_redis_database_data_dir_and_ports(index: int, want: dict) -> None:
    assert node_env(SINGLE, index) == want


def test_a_node_of_several_keeps_metrics_off_and_the_redis_servers_address() -> None:
    env = {**SINGLE, "EDGEWORKERS_METRICS_PORT": "0", "EDGEWORKERS_REDIS_URL": "rediss://redis.local:6380"}
    got = node_env(env, 2)
    assert (got["EDGEWORKERS_METRICS_PORT"], got["EDGEWORKERS_REDIS_URL"]) == ("0", "rediss://redis.local:6380/2")
    with pytest.raises(ValueError, match="redis:// or rediss://"):
        node_env({**SINGLE, "EDGEWORKERS_REDIS_URL": "unix:///run/redis.sock"}, 2)


def test_with_several_nodes_each_process_but_the_cloud_runs_once_per_node_with_its_settings(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("cloud: echo cloud $EDGEWORKERS_NODE_NAME; exec sleep 600\n"
                        "agent: echo agent $EDGEWORKERS_NODE_NAME $EDGEWORKERS_REDIS_URL; exec sleep 600\n")
    env_file = tmp_path / "edgeworkers.env"
    env_file.write_text("EDGEWORKERS_NODE_NAME=box\nEDGEWORKERS_REDIS_URL=redis://127.0.0.1:6379/0\n")
    log = tmp_path / "edgeworkers.log"
    supervisor = subprocess.Popen([sys.executable, "-m", "edgeworkers.supervisor", "--procfile", str(procfile),
                                   "--env-file", str(env_file), "--run-dir", str(tmp_path), "--nodes", "2"])
    try:
        wait_for(lambda: log.exists() and log.read_text().count(" | ") >= 3, 10, "the three processes' output")
    finally:
        supervisor.terminate()
        supervisor.wait(30)
    said = sorted(line.split(" ", 1)[1] for line in log.read_text().splitlines() if " | " in line)
    assert said == ["agent-1 | agent box-1 redis://127.0.0.1:6379/1", "agent-2 | agent box-2 redis://127.0.0.1:6379/2",
                    "cloud | cloud box"]
