# Two entry points, each installing what it needs on first use:
#   make repro   run the whole pipeline (dvc repro) with params.yaml
#   make test    run the whole test suite
# The environment lives in .venv and is reused until pyproject.toml changes.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The pinned pair installs first: a loose `torch` requirement could pull a different multi-GB
# build. Elsewhere pip takes these from PyPI; override TORCH_PINS to choose another build.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test test-fast lint bench ui chromium clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[dev,baselines]'
	touch $@

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP) chromium
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src pipeline tests benchmarks scripts
	$(BIN)/ruff format --check src pipeline tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_morphometry.py
	$(BIN)/python benchmarks/bench_train.py

# The MLflow UI on the pipeline's store, reachable from this machine only. A tracking server
# (MLFLOW_TRACKING_URI=http...) serves its own UI: open that address instead.
ui: $(STAMP)
	@case "$${MLFLOW_TRACKING_URI:-}" in http://*|https://*) \
	  echo "MLFLOW_TRACKING_URI is a tracking server: open $$MLFLOW_TRACKING_URI in a browser"; \
	  exit 0;; esac; \
	set -x; $(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port $${PORT:-5000}

# Debian's Chromium, for the browser test of the MLflow UI (tests/test_mlflow_ui.py); `make
# repro` never needs it. Installed with apt when missing and we are root; otherwise a note,
# and that test skips (under CI it fails instead).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get (for tests/test_mlflow_ui.py)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends chromium; } \
	    || echo "warning: apt-get could not install chromium; the MLflow UI test will skip"; \
	  else \
	    echo "note: chromium not found and not root: the MLflow UI test will skip" \
	      "(install it with: sudo apt-get install chromium)"; \
	  fi; }

clean-venv:
	rm -rf $(VENV)
