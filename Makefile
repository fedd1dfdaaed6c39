# Two commands for a newcomer (see README.md):
#   make demo   set up (.venv) and run the main job on the embedded PostgreSQL
#   make test   set up (.venv) and run every check: codegen, ruff, sqlfluff, pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench docs clean

$(BIN)/bqx: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/bqx

demo: install
	$(BIN)/bqx demo

test: install
	$(BIN)/bqx codegen --check
	$(BIN)/ruff check py_tasks tests
	$(BIN)/python -m pytest

bench: install
	$(BIN)/bqx bench

docs: install
	$(BIN)/bqx dbt -- docs generate

clean:
	rm -rf target logs .pytest_cache
