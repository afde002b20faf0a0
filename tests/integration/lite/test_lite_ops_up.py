"""`ops/up --lite` runs Procfile.lite (the cloud and one `edgeworkers agent`), on the stand-in checkout of
tests/integration/test_ops_up.py; without the flag, `ops/up` still runs the Procfile."""
from __future__ import annotations

from pathlib import Path

from tests.integration.test_ops_up import children_of, make_root, root, run, wait_gone  # noqa: F401  (root: the fixture)

FAKE_AGENT = "agent: echo 'INFO edgeworkers.agent: agent is ready: node x'; exec sleep 600\n"


def test_up_lite_starts_procfile_lite_waits_for_the_agent_and_down_stops_it(root: Path) -> None:  # noqa: F811
    make_root(root, "cloud: .venv/bin/python cloud.py\nworker: exec sleep 600\n")
    (root / "Procfile.lite").write_text("cloud: .venv/bin/python cloud.py\n" + FAKE_AGENT)

    up = run(root, "up", "--lite")

    assert up.returncode == 0, up.stderr
    assert "edgeworkers is up: cloud agent" in up.stdout
    supervisor = int((root / ".run" / "supervisor.pid").read_text())
    children = children_of(supervisor)
    assert len(children) == 2
    assert run(root, "down").returncode == 0
    assert wait_gone([supervisor, *children]) == []


def test_up_lite_waits_for_the_agent_to_say_it_is_ready(root: Path) -> None:  # noqa: F811
    make_root(root, "cloud: .venv/bin/python cloud.py\n")
    (root / "Procfile.lite").write_text("cloud: .venv/bin/python cloud.py\nagent: exec sleep 600\n")

    up = run(root, "up", "--lite", env={"EDGEWORKERS_UP_TIMEOUT_S": "3"})

    assert up.returncode != 0
    assert "not ready within 3 s: agent" in up.stderr


def test_up_refuses_an_unknown_flag(root: Path) -> None:  # noqa: F811
    make_root(root, "cloud: .venv/bin/python cloud.py\n")

    up = run(root, "up", "--heavy")

    assert up.returncode != 0
    assert "usage: ops/up [--lite]" in up.stderr
    assert not (root / ".run" / "supervisor.pid").exists()
