# fugu's tasks. `make demo` and `make test` work on a fresh machine: they install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fugu-installed
# The constraints file pins torch to the CPU wheel; PIP_CONSTRAINT also reaches build isolation.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
# Libraries that write outside the project are pointed at the run's own folders.
export WANDB_MODE ?= offline
export MUJOCO_GL ?= egl
export NO_MKDOCS_2_WARNING := 1

.PHONY: install demo test lint typecheck layers docs pytest bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install fugu with the dev extras

demo: install ## fugu's main job, with live progress
	$(BIN)/fugu train cartpole-v1

test: install lint typecheck layers docs pytest ## everything CI checks

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

layers: install
	$(BIN)/lint-imports

docs: install
	$(BIN)/mkdocs build --strict --quiet --site-dir $(CURDIR)/.site

pytest: install
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=90 -q

bench: install ## every benchmark, peers measured in the same run, one JSON line each
	@for script in benchmarks/*.py; do echo "# $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf .site .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov runs
