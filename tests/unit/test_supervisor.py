"""The supervisor's pure parts: restart back-off, how a Procfile command is run, a process's identity."""
from __future__ import annotations

import os
import subprocess

import pytest

from edgeworkers.supervisor import MAX_DELAY_S, restart_delay, shell_command, start_time


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
