# One-command set-up: every target creates .venv when it is missing and installs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test report bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

report: $(STAMP)
	$(BIN)/python -m studies --out reports

# peers for the benchmarks: numdifftools via the bench extra, torch (the CPU wheel) via dev.
# The torch zoo against torch.autograd.gradcheck runs when torch imports.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/network.py
	$(BIN)/python benchmarks/number_systems.py
	$(BIN)/python benchmarks/bar_coverage.py
	$(BIN)/python benchmarks/gradient.py
	$(BIN)/python benchmarks/check.py
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(BIN)/python benchmarks/torch_check.py --repeat 3; \
	else \
		echo "torch is not installed: skipping benchmarks/torch_check.py (pip install torch==2.13.0)"; \
	fi

DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $(DOCS_STAMP)

# the documentation site: --strict turns a broken link or API reference into an error
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) reports .pytest_cache site
