"""The coverage domain stays pure: standard library, the shared money/clock kernel and its own
modules only, so rules run without a database, queue or web framework."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[3] / "services" / "coverage" / "domain"
ALLOWED_PROJECT = ("shared.money", "shared.clock", "services.coverage.domain")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_module_imports_only_stdlib_and_kernel(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        assert name.startswith(ALLOWED_PROJECT), f"{path.name} imports {name}"


def test_domain_modules_stay_small() -> None:
    for path in DOMAIN.glob("*.py"):
        assert len(path.read_text().splitlines()) < 500, path.name
