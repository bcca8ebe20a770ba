"""Keep docs and docker files true: every MTM_* name they mention is a real setting, every
command they run exists in the CLI, and the README's quickstart commands are Makefile targets."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from services.cli import build_parser
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {"MTM_" + f.name.upper() for f in msgspec.structs.fields(Settings)}
TEST_ONLY = {
    "MTM_TEST_DATABASE_URL",
    "MTM_TEST_REDIS_URL",
    "MTM_BENCH_DATABASE_URL",
    "MTM_BENCH_REDIS_URL",
    "MTM_DEBUG_ERRORS",
}


def _cli_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def test_docker_files_use_real_settings_and_commands() -> None:
    for name in ("docker/Dockerfile", "docker/compose.yaml"):
        text = (ROOT / name).read_text()
        for var in set(re.findall(r"\bMTM_[A-Z0-9_]+", text)):
            assert var in SETTING_NAMES, f"{name} sets unknown {var}"
    compose = (ROOT / "docker/compose.yaml").read_text()
    for cmd in re.findall(r'command: \["(\w+)"\]', compose):
        assert cmd in _cli_commands(), cmd
    assert 'CMD ["serve"]' in (ROOT / "docker/Dockerfile").read_text()
    assert "USER app" in (ROOT / "docker/Dockerfile").read_text()


def test_readme_configuration_table_matches_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    mentioned = set(re.findall(r"\bMTM_[A-Z0-9_]+", readme)) - TEST_ONLY
    assert mentioned <= SETTING_NAMES, mentioned - SETTING_NAMES
    assert mentioned >= SETTING_NAMES, (
        f"settings missing from the README: {SETTING_NAMES - mentioned}"
    )


def test_readme_quickstart_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"^make (\w[\w-]*)", readme, flags=re.MULTILINE):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), (
            f"make {target} is not a target"
        )
    assert "make test" in (ROOT / ".ci/run").read_text()
    for cmd in re.findall(r"^\| `([a-z-]+)[ `]", readme, flags=re.MULTILINE):
        if cmd in {"serve", "worker", "migrate", "apikey", "dev", "demo"}:
            assert cmd in _cli_commands(), cmd
