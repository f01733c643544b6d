# Télésanté — the two commands: `make run` (demo on http://127.0.0.1:8000) and `make test` (everything CI runs).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

export TELESANTE_DATA_DIR ?= ./var

.PHONY: run test lint bench install clean

## run: install if needed, migrate, seed the demo region (TELESANTE_DEMO=1 by default), serve
run: export TELESANTE_DEMO ?= 1
run: $(INSTALLED)
	$(BIN)/telesante db upgrade
	$(BIN)/telesante demo seed
	$(BIN)/telesante serve

## test: lint, the whole suite (SQLite + PostgreSQL, browser) on one pytest-xdist worker per CPU (each test file
## on one worker; each worker its own PostgreSQL database), then schemathesis on its own (its cases share one test
## id, which pytest-xdist cannot spread), then alembic check on a fresh database
TEST_WORKERS ?= logical
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/test_schemathesis.py
	$(BIN)/pytest tests/test_schemathesis.py
	@tmp=$$(mktemp -d) && \
	  TELESANTE_DATA_DIR=$$tmp TELESANTE_DATABASE_URL= $(BIN)/telesante db upgrade && \
	  TELESANTE_DATA_DIR=$$tmp TELESANTE_DATABASE_URL= $(BIN)/telesante db check && \
	  rm -rf $$tmp

lint: $(INSTALLED)
	$(BIN)/ruff check src tests bench

## bench: quick benchmarks (python -m bench.patient_search / bench.notify without --quick for the full sizes)
bench: $(INSTALLED)
	$(BIN)/python -m bench.patient_search --quick
	$(BIN)/python -m bench.notify --quick

install: $(INSTALLED)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changes.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
