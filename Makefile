# Two commands for a newcomer (see README.md):
#   make demo   set up (.venv) and run the main job on the embedded PostgreSQL
#   make test   set up (.venv) and run every check: codegen, ruff, sqlfluff, pytest
#   make test-scale  the scale tier: millions of bars, HistData every row (docs/testing.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-scale bench docs clean

$(BIN)/bqx: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/bqx

demo: install
	$(BIN)/bqx demo

# prints the ten slowest tests and the whole target's time (install excluded)
test: install
	@start=$$(date +%s); \
	$(BIN)/bqx codegen --check && $(BIN)/ruff check py_tasks tests && \
	$(BIN)/python -m pytest --durations=10; \
	rc=$$?; echo "make test: $$(( $$(date +%s) - start )) s (checks and pytest)"; exit $$rc

test-scale: install
	@start=$$(date +%s); \
	$(BIN)/python -m pytest -m scale -rsP --durations=10; \
	rc=$$?; echo "make test-scale: $$(( $$(date +%s) - start )) s"; exit $$rc

bench: install
	$(BIN)/bqx bench

docs: install
	$(BIN)/bqx dbt -- docs generate

clean:
	rm -rf target logs .pytest_cache
