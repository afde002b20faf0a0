"""The ops/ scripts and .ci/run: shellcheck-clean (shellcheck comes from ops/setup) and executable; ops/setup and
ops/edgeworkers.env checked with stand-ins, no real package touched."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from honcho.environ import parse

from edgeworkers.config import Settings

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [REPO / ".ci" / "run", *(p for p in sorted((REPO / "ops").iterdir()) if p.is_file() and not p.suffix)]


def test_every_script_is_found() -> None:
    assert {p.name for p in SCRIPTS} >= {"run", "setup", "services", "images", "up", "down", "test", "install"}


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd is this machine's init: it would install")
@pytest.mark.skipif(os.geteuid() != 0, reason="ops/install checks for root first")
@pytest.mark.parametrize(("args", "error"), [
    ((), "systemd is not this machine's init: ops/up runs edgeworkers without it"),
    (("--uninstall",), "systemd is not this machine's init"),
    (("--heavy",), "usage: ops/install [--lite]"),
])
def test_install_refuses_a_machine_without_systemd_and_an_unknown_flag_touching_nothing(args: tuple[str, ...],
                                                                                        error: str) -> None:
    result = subprocess.run([REPO / "ops" / "install", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert error in result.stderr
    assert "installing" not in result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_executable_and_strict(script: Path) -> None:
    text = script.read_text()
    assert os.access(script, os.X_OK)
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


def test_scripts_pass_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "-x", str(REPO / "ops" / "lib.sh"), *map(str, SCRIPTS)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="ops/setup installs packages as root (else through sudo)")
def test_setup_reports_a_failed_apt_install_by_name_and_keeps_the_machine_policy(tmp_path: Path) -> None:
    """Stand-in dpkg-query (nothing installed) and apt-get (no network) first on PATH; no real package is touched."""
    shutil.copytree(REPO / "ops", tmp_path / "ops", ignore=shutil.ignore_patterns("bench"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (
        ("dpkg-query", "#!/bin/sh\nexit 1\n"),
        ("apt-get", "#!/bin/sh\necho \"apt-get $1: $DEBIAN_FRONTEND $NEEDRESTART_SUSPEND\" >&2\n"
                    "echo 'E: Failed to fetch deb.debian.org' >&2\nexit 100\n"),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    policy = Path("/usr/sbin/policy-rc.d")
    before = policy.read_bytes() if policy.exists() else None

    setup = subprocess.run(
        [tmp_path / "ops" / "setup"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )

    assert setup.returncode != 0
    assert "apt-get update: noninteractive 1" in setup.stderr  # no prompt, no daemon restarted by needrestart
    assert "E: Failed to fetch deb.debian.org" in setup.stderr
    assert "apt-get failed (exit 100): docker.io redis-server" in setup.stderr
    assert not (tmp_path / ".venv").exists()
    assert (policy.read_bytes() if policy.exists() else None) == before


def test_every_setting_in_the_env_file_names_a_config_field_and_uncomments_to_its_shown_value() -> None:
    lines = (REPO / "ops" / "edgeworkers.env").read_text().splitlines()
    settings = [line.lstrip("# ") for line in lines if line.lstrip("# ").startswith("EDGEWORKERS_")]
    assert len(settings) >= 5
    for line in settings:
        name, shown = line.split("=", 1)
        assert name.removeprefix("EDGEWORKERS_").lower() in Settings.model_fields, name
        assert parse(line) == {name: shown}, line
