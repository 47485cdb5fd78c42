# Two commands do all the set-up on a fresh Debian machine:
#   make demo   - local MariaDB + PostgreSQL, synthetic OpenDental source, the nightly run end to end
#   make test   - the test suite against real servers that the run starts and stops itself
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
CLI         := $(PY) -m etl_pipeline.cli
SCALE       ?= 0.05
SEED        ?= 42
STAMP       := .local/stamps
# Debian packages the project needs: servers for the local stack, headers to build mysqlclient,
# pgloader (benchmark peer), chromium (docs site test) and chromium-driver (the Airflow UI test), docker-compose + nginx (compose file and docs proxy tests),
# redis-server (the Celery broker of `make airflow EXECUTOR=celery` and the scheduler tests).
APT_PACKAGES := mariadb-server mariadb-client libmariadb-dev pkg-config postgresql postgresql-client redis-server \
                pgloader chromium chromium-driver docker-compose nginx

export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DO_NOT_TRACK := 1
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export PYTHONUNBUFFERED := 1

.PHONY: help setup system-deps venv manifest demo airflow local-up local-down local-status test test-e2e test-slow test-faults test-scheduler lint format bench clean

help:
	@echo "make demo    - run the whole nightly job on a local throwaway stack (SCALE=$(SCALE))"
	@echo "make airflow - Airflow UI on http://localhost:8080 with both DAGs (EXECUTOR=local|celery; README: Airflow locally)"
	@echo "make test    - run the test suite (starts and stops its own servers)"
	@echo "make test-e2e / test-slow / test-faults / test-scheduler - nightly DAG end to end / scale tests / fault injection / nightly on Celery"
	@echo "make local-up | local-down | local-status - the local MariaDB + PostgreSQL"
	@echo "make lint    - ruff (rules and format), mypy, sqlfluff"
	@echo "make format  - ruff format and the fixable ruff rules, in place"
	@echo "make bench   - the benchmarks (long)"

setup: system-deps venv manifest

# apt-get only for what is missing, so a ready machine costs nothing.
system-deps: $(STAMP)/system-deps
$(STAMP)/system-deps: Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(STAMP) && touch $@

venv: $(STAMP)/venv
$(STAMP)/venv: pyproject.toml uv.lock $(STAMP)/system-deps
	@command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
	uv sync --frozen --extra dev -p 3.11
	@mkdir -p $(STAMP) && touch $@

# Cosmos renders the dbt project from manifest.json: build it without touching a database.
manifest: $(STAMP)/venv
	@cd dbt_dental_models && [ ! -f dbt_project.yml ] || ../$(VENV)/bin/dbt parse --quiet --profiles-dir . --target local

# stack up, synthetic source, analyze-schema, full nightly run through Airflow, one day of activity,
# incremental nightly run, summary (etl_pipeline/demo.py)
demo: setup
	$(PY) -m etl_pipeline.demo --scale $(SCALE) --seed $(SEED)

# Airflow locally as deployed (etl_pipeline/airflow_cluster.py): scheduler, DAG processor, triggerer, API
# server/UI on the stack's PostgreSQL metadata DB; EXECUTOR=celery adds redis-server and three Celery
# workers. UI on http://localhost:8080, user admin, password in .local/airflow/simple_auth_manager_passwords.json.generated
EXECUTOR ?= local
airflow: setup
	$(CLI) local up
	$(PY) -m etl_pipeline.airflow_cluster $(EXECUTOR)

local-up: setup
	$(CLI) local up
local-down:
	$(CLI) local down
local-status:
	$(CLI) local status

# two workers (the machine's cores); a module stays in one worker, its module fixtures built once
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# the nightly DAG end to end through `airflow dags test` (tests/test_e2e_nightly.py: about 9 minutes
# alone, so out of `make test`'s budget); a stack id of its own, so it can run beside `make test`
test-e2e: setup
	TEST_STACK_ID=6 $(PY) -m pytest -m e2e

test-slow: setup
	$(PY) -m pytest -m slow

test-faults: setup
	$(PY) -m pytest -m faults

# the nightly through the scheduler, API server and Celery workers (tests/test_scheduler_celery.py);
# a stack id of its own, so it can run beside `make test`
test-scheduler: setup
	TEST_STACK_ID=5 $(PY) -m pytest -m scheduler

PY_SOURCES := etl_pipeline airflow tests bench

lint: setup
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/mypy
	cd dbt_dental_models && ../$(VENV)/bin/sqlfluff lint models --nocolor

format: setup
	$(VENV)/bin/ruff check --fix $(PY_SOURCES)
	$(VENV)/bin/ruff format $(PY_SOURCES)

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	-$(CLI) local down
	rm -rf .local $(VENV)
