# `make demo` and `make test` each set up .venv first (idempotent; fast when already done).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench lint clean

setup:
	@$(PYTHON) tools/setup_env.py

demo: setup
	@$(BIN)/styletalker demo

test: setup
	@$(BIN)/python -m pytest -q

# Lint: ruff over the repository and mypy over the core and built-in plugins (settings in pyproject.toml).
lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/mypy

bench: setup
	@$(BIN)/python -m pytest benchmarks -q --benchmark-only

clean:
	rm -rf $(VENV) out .pytest_cache .benchmarks .mypy_cache .ruff_cache
