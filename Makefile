# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint services bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## Run one simulated week on embedded defaults (SQLite, in-process broker, offline providers).
demo: $(BIN)/.installed
	$(BIN)/autopilot demo

## Run the whole test suite against the local PostgreSQL and Redis (started if stopped), in
## TEST_PROCESSES processes (pytest-xdist; a module's tests stay in one process). Four on two
## cores: the end-to-end and browser tests spend most of their time waiting for worker processes
## and chromium (1,416 tests on one machine: 2 min 49 s with four, 3 min 06 s with three, 3 min 04 s with five).
TEST_PROCESSES ?= 4
test: $(BIN)/.installed services
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check app actors admin tests bench

services:
	scripts/ensure-services

bench: $(BIN)/.installed services
	$(BIN)/python -m bench.punctuality
