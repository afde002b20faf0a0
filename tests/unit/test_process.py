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


# A 300 KB block, freed, then another: glibc raises its mmap threshold to the freed block's size, so the second one
# lands in the heap (where its memory stays once freed); with the thresholds fixed it is mapped apart again.
HEAP_PROBE = """
import ctypes, sys
from edgeworkers.process import trim_for_long_run
if sys.argv[1] == "trimmed":
    trim_for_long_run()
first = bytearray(300_000)
del first
second = bytearray(300_000)
address = ctypes.addressof((ctypes.c_char * len(second)).from_buffer(second))
for line in open("/proc/self/maps"):
    span, *rest = line.split()
    low, high = (int(part, 16) for part in span.split("-"))
    if low <= address < high:
        print(rest[-1] if len(rest) == 5 else "anonymous")
"""


@pytest.mark.parametrize(("mode", "where"), [("trimmed", "anonymous"), ("plain", "[heap]")])
def test_a_long_running_process_maps_large_blocks_apart_after_freeing_one(mode: str, where: str) -> None:
    result = subprocess.run([sys.executable, "-c", HEAP_PROBE, mode], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == where
