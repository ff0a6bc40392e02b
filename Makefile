# Two commands do all the set-up on a fresh machine:
#   make demo   -- create .venv, install, run the main job on the default scenario
#   make test   -- create .venv, install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Extra pip arguments for torch (for example an index that serves CPU builds).
TORCH_PIP_ARGS ?=
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-ci test-slow test-ray lint bench clean dashboard browser test-browser sample-run

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the tested CPU torch first, so nothing below can pull a CUDA build
	$(BIN)/pip install -q $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/pip install -q -e ".[all,dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/liveenv demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# What .ci/run runs: the fast suite plus the end-to-end browser test (skips without chromium).
test-ci: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow or browser"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The sweep on a local Ray instance: installs the `ray` extra into .venv first (not in
# `make test` or CI: Ray is a large optional install and starts its own processes).
test-ray: $(STAMP)
	$(BIN)/pip install -q -e ".[ray]"
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/agents/align/test_sweep.py -k ray -rs

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The dashboard on a run directory (default: the demo's; the sample run if it has no results).
RUN_DIR ?= runs/demo
dashboard: $(STAMP)
	$(BIN)/liveenv dashboard --run-dir $(RUN_DIR)

# Debian's chromium for the end-to-end browser test (Playwright drives it by path).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y chromium

test-browser: $(STAMP)
	$(BIN)/python -m pytest -q -m browser tests/dashboard/test_dashboard_browser.py

# Rebuild dashboard/sample_run (the bundled result set) from a fresh demo run.
sample-run: $(STAMP)
	$(BIN)/liveenv demo --run-dir runs/sample
	$(BIN)/python -m dashboard.sample runs/sample

bench: $(STAMP)
	$(BIN)/python benchmarks/env_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
