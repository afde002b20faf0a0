"""The ops/ scripts and .ci/run pass shellcheck (installed by ops/setup) and are executable."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [REPO / ".ci" / "run", *(p for p in sorted((REPO / "ops").iterdir()) if p.is_file() and not p.suffix)]


def test_every_script_is_found() -> None:
    assert {p.name for p in SCRIPTS} >= {"run", "setup", "services", "images", "up", "down", "test"}


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
