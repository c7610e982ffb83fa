# Quick start: `make paper_figures` runs the default pipeline, `make test` the tests.
# Both create .venv and install the package (pyproject.toml: its pinned dependencies,
# Snakemake and the dev tools) first.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
FASHION_MNIST_MIRROR := /usr/share/datasets/fashion-mnist
CORES ?= all

.PHONY: paper_figures test lint venv fashion_mnist clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Fashion-MNIST comes from Debian's package when we may install it (root on
# Debian/Ubuntu); otherwise the data rule tries the other mirrors, then downloads.
fashion_mnist:
	@if [ ! -f $(FASHION_MNIST_MIRROR)/train-images-idx3-ubyte.gz ] && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist \
	    || echo "could not install dataset-fashion-mnist; the data rule will try to download"; \
	fi

paper_figures: venv fashion_mnist
	$(BIN)/snakemake --cores $(CORES) paper_figures

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules

clean:
	rm -rf results logs .snakemake
