"""The long-running edge processes load no rich (structlog's pretty tracebacks) and cap glibc's malloc arenas."""
from __future__ import annotations

import subprocess
import sys

import pytest

from edgeworkers.process import long_running

PROBE = """
import sys
sys.argv = ["edgeworkers", *sys.argv[1:]]
import edgeworkers.cli, structlog
print(sys.modules.get("rich") is not None)
"""


@pytest.mark.parametrize(("args", "expected"), [
    (["agent"], True), (["worker", "-t", "4"], True), (["scheduler"], True), (["node", "serve"], True),
    (["node", "serve", "--kubeconfig", "/k"], True), (["--help"], False), (["pod", "list"], False),
    (["node"], False), (["cloud", "serve"], False), ([], False),
])  # fmt: skip
def test_long_running_commands(args: list[str], expected: bool) -> None:
    assert long_running(args) is expected


@pytest.mark.parametrize(("args", "rich_loaded"), [(["node", "serve"], "False"), (["pod", "list"], "True")])
def test_a_long_running_process_never_loads_rich(args: list[str], rich_loaded: str) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == rich_loaded
