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

.PHONY: install system-deps demo test lint typecheck layers docs pytest bench clean

# Debian packages of the C export's checks: host gcc, the Cortex-M0+ cross compiler and QEMU.
DEBIAN_PACKAGES := gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
DEBIAN_TOOLS := gcc arm-none-eabi-gcc qemu-system-arm

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install fugu with the dev extras

system-deps: ## Debian packages the export tests use (installed as root; else those tests skip)
	@missing=""; for tool in $(DEBIAN_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages: $(DEBIAN_PACKAGES)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(DEBIAN_PACKAGES) >/dev/null) \
			|| echo "note: apt-get failed; the C export's device tests will skip"; \
	else \
		echo "note: not root or no apt-get: install $(DEBIAN_PACKAGES) for the C export's tests"; \
	fi

demo: install ## fugu's main job, with live progress
	$(BIN)/fugu train cartpole-v1

test: install system-deps lint typecheck layers docs pytest ## everything CI checks

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
