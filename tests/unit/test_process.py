"""The long-running edge processes load no rich (structlog's pretty tracebacks) and cap glibc's malloc arenas."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeworkers.process import (
    AGENT_OOM_SCORE_ADJ,
    long_running,
    lowest_oom_score_adj,
    node_oom_score_floor,
    protect_from_oom,
)

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


OOM_PROBE = """
import sys
sys.argv = ["edgeworkers", *sys.argv[1:]]
import edgeworkers.cli
print(open("/proc/self/oom_score_adj").read().strip())
"""


@pytest.mark.parametrize(("args", "protected"), [(["worker"], True), (["pod", "list"], False)])
def test_a_long_running_process_takes_kubelets_oom_score(args: list[str], protected: bool) -> None:
    result = subprocess.run([sys.executable, "-c", OOM_PROBE, *args], capture_output=True, text=True, check=True)
    own = int(Path("/proc/self/oom_score_adj").read_text())
    expected = max(AGENT_OOM_SCORE_ADJ, node_oom_score_floor()) if protected else own
    assert int(result.stdout) == expected
    if protected and expected != AGENT_OOM_SCORE_ADJ:  # refused by the kernel (no CAP_SYS_RESOURCE): said so
        assert "cannot set this process's oom_score_adj to -999" in result.stderr


def test_protect_from_oom_writes_kubelets_score_and_reports_a_refusal(tmp_path: Path) -> None:
    score = tmp_path / "oom_score_adj"
    assert protect_from_oom(score) and score.read_text() == "-999\n"
    assert not protect_from_oom(tmp_path / "absent" / "oom_score_adj")


@pytest.mark.parametrize(("status", "own", "lowest"), [
    ("Name:\tx\nCapEff:\t000001ffffffffff\n", 0, -1000),  # CAP_SYS_RESOURCE (bit 24) held: any score
    ("Name:\tx\nCapEff:\t000001fffeffffff\n", 0, 0),  # not held: none below the process's own
    ("CapEff:\t000001fffeffffff\n", -500, -500),
    ("Name:\tx\n", 200, 200),
])  # fmt: skip
def test_the_lowest_oom_score_the_node_can_give(status: str, own: int, lowest: int) -> None:
    assert lowest_oom_score_adj(status, own) == lowest
