# One entry point for set-up, the demo and the quality gate. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := infra,aws,spark,train,local,dev
STAMP := $(VENV)/.installed
SAMPLE := data/sample/ml-latest-small
# Flags for `recsys demo`, e.g. make demo DEMO_FLAGS="--no-serve --json" (or "--no-autoencoder").
DEMO_FLAGS ?=

# Quiet, offline-friendly CDK/jsii in every process started from here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: help install demo test lint typecheck unit synth bench lock clean vendor

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with every extra the demo and tests need, and the pinned CDK CLI

$(STAMP): pyproject.toml requirements/constraints.txt package.json package-lock.json
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.11 not found (set PYTHON=...)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(PYTHON) is older than 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet --progress-bar off -c requirements/constraints.txt -e ".[$(EXTRAS)]"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(STAMP) ## the whole pipeline on this machine (bundled sample), then the API on 127.0.0.1:8080
	$(BIN)/recsys validate --kind catalog $(SAMPLE)/movies.csv
	$(BIN)/recsys validate --kind transactions $(SAMPLE)/ratings.csv
	$(BIN)/recsys demo $(DEMO_FLAGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy on the shared core
	$(BIN)/mypy

test: lint typecheck ## the quality gate: lint, types, and every test tier this machine can run
	$(BIN)/pytest

unit: $(STAMP) ## only the fast tier
	$(BIN)/pytest -m unit

synth: $(STAMP) ## synthesize the CloudFormation template offline (cdk.out/)
	npx cdk synth --no-notices -q

vendor: ## re-vendor the SageMaker SDK's FM image table (pip download of sagemaker-core, no install)
	$(BIN)/python -m training.fm.vendor_image_table

bench: $(STAMP) ## run the benchmarks (slow; results go to benchmarks/out/)
	$(BIN)/python benchmarks/validator_throughput.py
	$(BIN)/python benchmarks/synth_ml20m.py
	$(BIN)/python benchmarks/baselines.py

lock: ## re-pin every transitive dependency from the current .venv
	@# Local version labels (torch's "+cpu") are dropped so the pins also resolve where the CUDA build is used.
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^recsys-pipeline' | sed -E 's/\+[a-z0-9.]+$$//' \
		> requirements/constraints.txt

clean: ## remove the virtual environment and build outputs
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
