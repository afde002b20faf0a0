"""The code stays lint-clean under the project's ruff settings, and its layers layered (import-linter contracts,
both in pyproject.toml)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "edgeworkers", "scheduler", "tests", "ops"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layers_hold() -> None:
    """The layers, the composition root alone building clients, redis-py and the Docker SDK in their layers, the cloud
    apart from the edge."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


def _layered() -> set[str]:
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [layers] = [c["layers"] for c in contracts if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.split(":")}


def test_every_module_of_the_edge_is_in_a_layer() -> None:
    """A module outside the layers escapes the contract: each top-level module and package of ``edgeworkers`` but the
    cloud (which its own contracts keep apart) is named in one."""
    package = ROOT / "edgeworkers"
    modules = {f"edgeworkers.{path.stem}" for path in package.glob("*.py") if path.stem != "__init__"}
    modules |= {f"edgeworkers.{path.parent.name}" for path in package.glob("*/__init__.py")}
    assert modules - _layered() - {"edgeworkers.cloud"} == set()
