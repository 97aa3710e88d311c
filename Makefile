# Two commands for a fresh machine: `make demo` (the default study) and `make test` (the suite).
# Both create .venv/ first (Python >= 3.12) and install the package with its dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"
CORES ?= 2

.PHONY: all install demo test lint format clean

all: install

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "dime-pipeline needs Python >= 3.12 (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[fem,train,workflow,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(RUN) snakemake --cores $(CORES)

test: $(STAMP)
	$(RUN) pytest

lint: $(STAMP)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	# snakemake --lint, less its one deliberate finding (rules name no conda environment:
	# docs/install.md); the test says which findings it accepts
	$(RUN) pytest -q tests/test_packaging.py -k snakemake_lint

format: $(STAMP)
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

clean:  # generated study outputs (keeps the venv, the JIT cache and the READMEs)
	rm -rf results/config.yaml results/samples results/acquired results/datasets \
		results/inversions results/dime results/metrics results/figures results/report \
		results/logs results/benchmarks meshes/*/ .snakemake
