# Threadneedle: the two commands a newcomer needs are `make run` and `make test`.
#
# `make test` and `make test-postgres` need a Redis server at 127.0.0.1:6379
# (tests use database 15); `make test-postgres` also needs PostgreSQL at
# $(POSTGRES_URL) with the right to create databases.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432
BENCHMARKS := bench/command_path.py
# Bounded runs (a few minutes each); BENCH_ARGS= for the full sizes.
QUICK_BENCHMARKS := bench/projections.py bench/detection.py
BENCH_ARGS ?= --quick

.PHONY: help venv run test test-postgres lint bench clean

help:
	@echo "make run            start Redis, a Celery worker and beat, and the API, with the demo loaded"
	@echo "make test           unit, integration and end-to-end tests on SQLite (needs Redis at 127.0.0.1:6379)"
	@echo "make test-postgres  the application tests on a fresh PostgreSQL database at $(POSTGRES_URL)"
	@echo "make lint           ruff and mypy"
	@echo "make bench          the benchmark suite"
	@echo "make clean          remove the virtual environment and caches (var/, the data, is kept)"

venv: $(STAMP)

# Reinstalls whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: venv
	$(BIN)/needle up --demo

# pytest exits 5 when it collected no test; like any non-zero status, that fails the target.
test: venv
	NEEDLE_EVENT_STORE= NEEDLE_EVENT_STORE_SCHEMA= $(BIN)/pytest -q tests

# A database of its own for every run, dropped afterwards whatever pytest answered;
# the recipe exits with pytest's status.
PG_ADMIN = $(BIN)/python -c 'import sys, psycopg; psycopg.connect(sys.argv[1], autocommit=True).execute(sys.argv[2])' $(POSTGRES_URL)/postgres

test-postgres: venv
	db="needle_test_$$(date +%Y%m%d%H%M%S)_$$$$"; \
	$(PG_ADMIN) "CREATE DATABASE $$db"; \
	trap "$(PG_ADMIN) 'DROP DATABASE IF EXISTS $$db WITH (FORCE)'" EXIT; \
	echo "test-postgres: database $$db"; \
	NEEDLE_EVENT_STORE="$(POSTGRES_URL)/$$db" NEEDLE_EVENT_STORE_SCHEMA= \
		$(BIN)/pytest -q $(wildcard tests/e2e tests/integration)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv
	for script in $(BENCHMARKS); do $(BIN)/python "$$script"; done
	for script in $(QUICK_BENCHMARKS); do $(BIN)/python "$$script" $(BENCH_ARGS); done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
