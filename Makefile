# Two commands on a fresh machine: `make demo` and `make test`.
# Everything else (virtualenv, install) happens on the way.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

CHROMIUM := /usr/bin/chromium
STUNNEL  := /usr/bin/stunnel4

.PHONY: install system-deps test lint format demo sandbox bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## what the tests need of the system: Debian's chromium for the status page test,
## stunnel4 for the Kafka TLS tests (TLS in front of the local broker)
system-deps:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium (the status page test)"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
	  || echo "could not install chromium: the status page test will fail and say why"; }
	@test -x $(STUNNEL) || { echo "installing Debian's stunnel4 (the Kafka TLS tests)"; \
	  apt-get install -y -q stunnel4 >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q stunnel4 >/dev/null 2>&1; } \
	  || echo "could not install stunnel4: the Kafka TLS tests will fail and say why"; }

## lint + type-check + the whole test suite, against a local Kafka-protocol broker
## (KAFKA_BOOTSTRAP_SERVERS if set, else testcontainers Kafka, else the Tansu binary);
## here a missing browser or stunnel fails its tests instead of skipping them
test: $(STAMP) system-deps
	$(MAKE) --no-print-directory lint
	UCAAS_SYNC_REQUIRE_BROWSER=1 UCAAS_SYNC_REQUIRE_SYSTEM_DEPS=1 \
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
	$(BIN)/python bench/feeds_many.py
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache *.egg-info
