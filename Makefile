# TRD Care Network. `make run` and `make test` work on a fresh machine with Python 3.11+ and make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := -e shared -e services/intake -e services/pathway -e services/referral -e services/notify

.PHONY: run test test-unit test-cluster bench lint install clean help

help:
	@echo "make run    set up .venv, start nats-server and the four services, print URLs and a demo key"
	@echo "make test   the whole test suite (real nats-server, SQLite; PostgreSQL with TEST_DATABASE_URL)"
	@echo "make test-unit  the unit tier: no network, database or subprocess (seconds)"
	@echo "make test-cluster  three nats-servers, two replicas of each service, PostgreSQL, cluster faults"
	@echo "make bench  benchmarks; a JSON report under bench/results/, figures into README.md"
	@echo "make lint   ruff check (RUF100: no dead noqa) and ruff format --check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python constraints.txt requirements-dev.txt shared/pyproject.toml services/*/pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py

# Two passes: everything else on TEST_WORKERS workers (pytest-xdist: most tests wait on real
# processes, so two cores keep two busy), then the serial tests alone (tests/conftest.py).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not serial" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS)

# The first tier of `make test`: domain rules and handler logic through the in-memory fakes.
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Not in `make test` (minutes of real processes on two cores); .ci/run runs it after.
test-cluster: $(STAMP)
	CARE_CLUSTER=1 $(BIN)/python -m pytest tests/cluster $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/run.py --readme

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var .pytest_cache
