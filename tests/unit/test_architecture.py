"""Architecture rules: pure domain modules import no infrastructure; nothing is created at
import time; settings come only from MTM_* variables."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.config import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"sqlalchemy", "litestar", "arq", "asyncpg", "redis", "msgspec", "uvicorn", "structlog"}


def _domain_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "services").rglob("domain/*.py"))


@pytest.mark.parametrize("path", _domain_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_modules_import_no_infrastructure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_there_are_domain_modules_to_check() -> None:
    assert len(_domain_modules()) >= 5


def test_billing_never_imports_coverage_internals() -> None:
    for path in (ROOT / "services" / "billing").rglob("*.py"):
        text = path.read_text()
        for forbidden in ("services.coverage.tables", "services.coverage.repository"):
            assert forbidden not in text, f"{path} reaches into {forbidden}"


def test_settings_from_env_parses_types_and_rejects_garbage() -> None:
    s = Settings.from_env(
        {"MTM_PORT": "9001", "MTM_LOG_JSON": "false", "MTM_COMPONENTS": "billing", "OTHER": "x"}
    )
    assert (s.port, s.log_json, s.components) == (9001, False, "billing")
    with pytest.raises(SettingsError, match="port"):
        Settings.from_env({"MTM_PORT": "many"})
    with pytest.raises(SettingsError):
        Settings.from_env({"MTM_COMPONENTS": "everything"})


def test_importing_the_app_creates_nothing() -> None:
    import services.app
    import services.worker

    assert callable(services.app.create_app)
    assert "WorkerSettings" not in vars(services.worker)
