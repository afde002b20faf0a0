"""Every third-party package that the agent's code imports is a declared dependency: a fresh `pip install .` (without
the test extras, which bring more) runs every command. typer 0.29, for one, stopped installing click."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"edgeworkers", "scheduler"}


def imported_top_level(root: Path) -> set[str]:
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {normalized(re.split(r"[\[<>=~!; ]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    third_party = {name for root in FIRST_PARTY for name in imported_top_level(REPO / root)}
    third_party -= FIRST_PARTY | set(sys.stdlib_module_names)
    distributions = packages_distributions()
    undeclared = {name: distributions.get(name) for name in third_party
                  if not declared & {normalized(d) for d in distributions.get(name, [name])}}  # fmt: skip
    assert undeclared == {}
