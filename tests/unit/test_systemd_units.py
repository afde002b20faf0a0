"""The production install's systemd units (edgeworkers/systemd.py), generated from the real Procfiles and checked by
`systemd-analyze verify` (Debian's `systemd` package, installed by ops/setup, works where systemd is not PID 1)."""
from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeworkers.systemd import Install, command, units

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"  # its bin/edgeworkers exists: verify checks that ExecStart is executable


def parsed(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(text)
    return parser


@pytest.fixture
def install(tmp_path: Path) -> Install:
    env_file = tmp_path / "edgeworkers.env"
    env_file.write_text("EDGEWORKERS_REDIS_URL=redis://127.0.0.1:6379/0\n")
    return Install(VENV, env_file, shutdown_grace_s=45)


@pytest.mark.parametrize("procfile", ["Procfile", "Procfile.lite"])
def test_systemd_analyze_verifies_every_generated_unit(procfile: str, install: Install, tmp_path: Path) -> None:
    assert shutil.which("systemd-analyze"), "systemd-analyze missing: ops/setup installs Debian's systemd package"
    made = units((REPO / procfile).read_text(), install, lite=procfile.endswith(".lite"))
    for name, text in made.items():
        (tmp_path / name).write_text(text)

    verify = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / name) for name in made)],
                            capture_output=True, text=True, timeout=60)

    assert verify.returncode == 0, verify.stderr
    assert verify.stderr == ""  # no warning either (an unknown key is only a warning)


def test_a_unit_per_procfile_process_restarted_for_ever_after_docker_and_redis(install: Install) -> None:
    made = units((REPO / "Procfile").read_text(), install)

    assert sorted(made) == ["edgeworkers-agent.service", "edgeworkers-cloud.service", "edgeworkers-pods.service",
                            "edgeworkers-worker.service", "edgeworkers.target"]
    for name in ("agent", "worker", "cloud"):
        unit = parsed(made[f"edgeworkers-{name}.service"])
        service = unit["Service"]
        assert service["Restart"] == "always" and int(service["RestartSec"]) > 0
        assert unit["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up
        for key in ("After", "Wants"):
            assert {"docker.service", "redis-server.service"} <= set(unit["Unit"][key].split())
        assert service["EnvironmentFile"] == str(install.env_file)
        assert service["StateDirectory"].split() == ["edgeworkers", "edgeworkers/secrets"]
        assert service["StateDirectoryMode"] == "0700"
        assert service["MemoryMax"].endswith("M")
        assert unit["Install"]["WantedBy"] == "multi-user.target"
        assert service["KillMode"] == "mixed"  # SIGTERM to the main process; pods are Docker's, never in the cgroup
    agent = parsed(made["edgeworkers-agent.service"])["Service"]
    assert agent["ExecStart"] == f"{VENV}/bin/edgeworkers agent --no-worker"
    assert (agent["Type"], agent["WatchdogSec"], agent["NotifyAccess"]) == ("notify", "30", "main")
    assert parsed(made["edgeworkers-worker.service"])["Service"]["NotifyAccess"] == "all"  # dramatiq's processes
    assert "WatchdogSec" not in parsed(made["edgeworkers-cloud.service"])["Service"]


def test_the_memory_limits_follow_the_measured_footprint(install: Install) -> None:
    full = units((REPO / "Procfile").read_text(), install)
    lite = units((REPO / "Procfile.lite").read_text(), install, lite=True)

    def limit(made: dict[str, str], name: str) -> int:
        return int(parsed(made[f"edgeworkers-{name}.service"])["Service"]["MemoryMax"].removesuffix("M"))

    # BENCHMARKS.md, "Footprint": about 66 MB agent, 48 MB worker, 74 MB lite agent with 100 pods: 2.5x at least.
    assert limit(full, "agent") >= 2.5 * 66 and limit(full, "worker") >= 2.5 * 48 and limit(lite, "agent") >= 2.5 * 74


def test_the_node_shutdown_unit_stops_the_pods_only_when_the_machine_shuts_down(install: Install) -> None:
    made = units((REPO / "Procfile").read_text(), install)
    pods = parsed(made["edgeworkers-pods.service"])

    assert pods["Service"]["ExecStop"] == (
        f"{VENV}/bin/edgeworkers node-shutdown --if-shutting-down --grace-period 45")
    assert pods["Service"]["RemainAfterExit"] == "yes"
    assert int(pods["Service"]["TimeoutStopSec"]) > 45
    assert {"docker.service", "redis-server.service"} <= set(pods["Unit"]["After"].split())  # stops before them
    for name in ("agent", "worker"):  # they stop first: nothing restarts a pod while they are stopped
        assert "edgeworkers-pods.service" in parsed(made[f"edgeworkers-{name}.service"])["Unit"]["After"].split()


def test_a_procfile_command_outside_the_venv_is_refused() -> None:
    assert command(".venv/bin/edgeworkers worker", Path("/opt/e/venv")) == "/opt/e/venv/bin/edgeworkers worker"
    with pytest.raises(ValueError, match="must start with .venv/bin/"):
        command("edgeworkers worker", Path("/opt/e/venv"))
