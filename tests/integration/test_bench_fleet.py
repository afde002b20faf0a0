"""The fleet benchmark's smoke runs (ops/bench/fleet.py): a cloud, hollow nodes on their own Redis, the workload to
Running and the report, so the bench cannot rot: bare pods at two small sizes, and the cloud's controllers at one."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_fleet(*args: str) -> str:
    """The bench's output for a small run (a short stagger and steady state, two latency pods)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "ops/bench/fleet.py"), *args, "--latency-pods", "2", "--stagger-s", "1",
         "--steady-s", "1", "--timeout-s", "60"],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_the_smoke_run_brings_every_pod_to_running_and_reports_the_figures_beside_the_slos() -> None:
    out = run_fleet("--nodes", "5", "--pods", "20", "--baseline", "2", "--deployments", "3")
    assert "  2 nodes, 8 pods: API met, pod startup met" in out
    assert "  5 nodes, 20 pods: API met, pod startup met" in out
    assert "ratios to the baseline (2 nodes, 8 pods)" in out
    assert "calls the cloud failed (5xx, 429): 2 nodes: 0, 5 nodes: 0" in out
    for verb in ("create", "patch"):
        assert any(line.startswith(verb) for line in out.splitlines()), out


def test_the_controllers_smoke_run_brings_the_daemonset_and_deployments_pods_and_the_latency_pods_to_running() -> None:
    out = run_fleet("--workload", "controllers", "--nodes", "4", "--pods", "12", "--baseline", "0",
                    "--deployments", "2")
    assert "  4 nodes, 12 pods: API met, pod startup met, latency pods' startup met" in out
    assert "latency pods (2 created at 5/s once the workload is Running, each a Deployment of one replica)" in out
    assert "  4 nodes: created to bound " in out
