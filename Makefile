# Two commands do everything on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
WORKSPACE ?= workspace
# The default data: 1 s recordings at 16 kHz, sampled instruments in
# General MIDI families and real speech where FluidSynth, the soundfonts and
# flite are installed (scripts/ensure_sounds.sh), else procedural; a folder
# of their own, so a workspace made with earlier default data keeps them.
DATA ?= $(WORKSPACE)/default_sounds
export TF_USE_LEGACY_KERAS := 1
export TF_ENABLE_ONEDNN_OPTS ?= 1
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: setup run test test-fast bench lock clean

setup:
	@bash scripts/setup_env.sh $(VENV)
	@bash scripts/ensure_music_weights.sh $(VENV)

## Make the default data set if it is absent, ingest it, run the pipeline.
run: setup
	@bash scripts/ensure_sounds.sh
	@bash scripts/ensure_kserve.sh
	$(PY) -m pipeline synth --workspace $(WORKSPACE) --out $(DATA) --replace
	$(PY) -m pipeline ingest --workspace $(WORKSPACE) $(DATA)
	$(PY) -m pipeline run --workspace $(WORKSPACE)

# Two workers, each file's tests on one of them in order (files share
# module fixtures), the files that read the golden workspace together
# (tests/conftest.py groups them), the longest files handed out first
# (tests/file_seconds.json; xdist would reorder them by test count).
PYTEST_WORKERS ?= 2
## Every test, the real servers, S3 stand-in and portable Beam workers too.
test:
	@bash scripts/ensure_test_envs.sh
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder

## The inner loop: no whole-pipeline run, no server, no S3, no worker pool.
test-fast: setup
	@bash scripts/ensure_musicnn_reference.sh
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder \
	  -m "not e2e and not server and not s3 and not portable and not kserve"

## The benchmark suite (hours on 2 cores; see bench/RESULTS.md): RESULTS.md,
## the README's table, then
## the command line's start-up ratios (bench/startup.json), then predict's
## time and memory on LiteRT against TensorFlow (bench/device_side.json),
## then phase two's model server under 1, 4 and 16 clients
## (bench/serving.json).
bench: setup
	@bash scripts/ensure_kserve.sh
	$(PY) bench/run_bench.py
	$(PY) bench/startup.py --json bench/startup.json
	$(PY) bench/device_side.py --json bench/device_side.json
	$(PY) bench/serving.py --json bench/serving.json

## Re-resolve requirements.in into a complete requirements.lock.
lock:
	@bash scripts/lock.sh

clean:
	rm -rf $(WORKSPACE)
