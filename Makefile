# Two commands on a fresh machine: `make demo` and `make test`.
# Everything else (virtualenv, install) happens on the way.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install test lint format demo sandbox bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## lint + type-check + the whole test suite, against a local Kafka-protocol broker
## (KAFKA_BOOTSTRAP_SERVERS if set, else testcontainers Kafka, else the Tansu binary)
test: $(STAMP)
	$(MAKE) --no-print-directory lint
	$(BIN)/ucaas-sync broker -- $(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## the main job on embedded defaults
demo: $(STAMP)
	$(BIN)/ucaas-sync demo

## the UCaaS sandbox on its default port, for curl and experiments
sandbox: $(STAMP)
	$(BIN)/ucaas-sandbox --host 127.0.0.1 --port 8900

bench: $(STAMP)
	$(BIN)/python bench/sandbox_capacity.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/backlog.py
	$(BIN)/python bench/calendar_feeds.py
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache *.egg-info
