#!/usr/bin/env python3
"""The memory a launcher adds: `edgeworkers-supervisor` (what `ops/up` runs) beside `honcho start` (what it ran before)
and a bare Python interpreter, each running the same Procfile of stand-in processes (`sleep`), measured in one run.

For each it starts the launcher in a temp dir, waits until every process of the Procfile runs, lets it run --settle
seconds (the supervisor's loop turning, its log written), then reads the PSS (psutil's ``memory_full_info().pss``)
of the launcher and of its own helper processes (honcho forks a Python process per Procfile entry), not of the
Procfile's processes (they are the edge's), --samples times, a second apart, and prints the median and the ratio to
honcho's. The launchers run one at a time, so they share no pages with each other.

    .venv/bin/python ops/bench/supervisor.py
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from benchkit import print_command, wait_until

VENV_BIN = Path(sys.executable).parent
PROCESSES = ("cloud", "agent", "worker")


def launchers(run_dir: Path, procfile: Path) -> dict[str, list[str]]:
    return {
        "python -c 'sleep'": [sys.executable, "-c", "import time; time.sleep(3600)"],
        "honcho start": [str(VENV_BIN / "honcho"), "-f", str(procfile), "start"],
        "edgeworkers-supervisor": [str(VENV_BIN / "edgeworkers-supervisor"), "--procfile", str(procfile),
                                   "--run-dir", str(run_dir)],
    }


def measure(argv: list[str], settle_s: float, samples: int, expect: int) -> float:
    """The median PSS (MB) of the process run from ``argv`` and its descendants but the ``expect`` stand-ins (`sleep`),
    once they all run."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        launcher = psutil.Process(process.pid)

        def tree() -> tuple[list[psutil.Process], int]:
            descendants = launcher.children(recursive=True)
            stand_ins = sum(p.name() == "sleep" for p in descendants)
            return [launcher, *(p for p in descendants if p.name() != "sleep")], stand_ins

        wait_until(lambda: tree()[1] >= expect, 30, f"{argv[0]} to start its processes")
        time.sleep(settle_s)
        readings = []
        for _ in range(samples):
            readings.append(sum(p.memory_full_info().pss for p in tree()[0]) / 1e6)
            time.sleep(1)
        return statistics.median(readings)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settle", type=float, default=10.0, help="seconds each launcher runs before the readings")
    parser.add_argument("--samples", type=int, default=10, help="PSS readings, a second apart")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-supervisor-") as temp:
        procfile = Path(temp) / "Procfile"
        procfile.write_text("".join(f"{name}: exec sleep 3600\n" for name in PROCESSES))
        results = {}
        for name, argv in launchers(Path(temp), procfile).items():
            results[name] = measure(argv, args.settle, args.samples, 0 if name.startswith("python") else 3)
    load = print_command()
    print(f"{os.cpu_count()} CPUs, load average now {load}; a Procfile of {len(PROCESSES)} processes\n")
    print(f"  {'launcher':30} {'PSS MB':>8} {'/ honcho':>9}")
    for name, pss in results.items():
        print(f"  {name:30} {pss:8.1f} {pss / results['honcho start']:9.2f}")


if __name__ == "__main__":
    main()
