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

.PHONY: repro test test-fast lint bench ui clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src pipeline tests benchmarks scripts
	$(BIN)/ruff format --check src pipeline tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_morphometry.py
	$(BIN)/python benchmarks/bench_train.py

# The MLflow UI on the pipeline's store, reachable from this machine only.
ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port $${PORT:-5000}

clean-venv:
	rm -rf $(VENV)
