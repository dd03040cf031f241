# Two commands do everything on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
WORKSPACE ?= workspace
DATA ?= $(WORKSPACE)/default_data
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: setup run test bench lock clean

setup:
	@bash scripts/setup_env.sh $(VENV)

## Make the default data set if it is absent, ingest it, run the pipeline.
run: setup
	$(PY) -m pipeline synth --workspace $(WORKSPACE) --out $(DATA)
	$(PY) -m pipeline ingest --workspace $(WORKSPACE) $(DATA)
	$(PY) -m pipeline run --workspace $(WORKSPACE)

test: setup
	@bash scripts/ensure_browser.sh
	@bash scripts/ensure_databases.sh
	$(PY) -m pytest

## The benchmark suite (about 30 min on 2 cores): bench/RESULTS.md, then
## the command line's start-up ratios (bench/startup.json).
bench: setup
	$(PY) bench/run_bench.py
	$(PY) bench/startup.py --json bench/startup.json

## Re-resolve requirements.in into a complete requirements.lock.
lock:
	@bash scripts/lock.sh

clean:
	rm -rf $(WORKSPACE)
