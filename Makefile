# The two commands from the README: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
RUN_DATE ?= 2025-12-31
SAMPLE_ARGS ?= --customers 20000 --days 365 --seed 42 --end-date $(RUN_DATE)
export CRM_HOME ?= $(CURDIR)/var

.PHONY: venv system-deps sample run test test-unit bench lock clean

venv:
	@bash scripts/setup.sh

system-deps:
	@bash scripts/install_system_deps.sh chromium docker-compose

sample: venv
	@[ -d "$(CRM_HOME)/sample/orders" ] || $(BIN)/crm generate $(SAMPLE_ARGS)

## Sets up, generates sample data, runs crm_daily on the embedded warehouse, prints the summary.
run: sample
	@$(BIN)/crm run --ds $(RUN_DATE)

## Sets up (PostgreSQL included) and runs the whole test suite.
test: venv system-deps
	@$(BIN)/python -m pytest -n 2 --dist loadgroup

test-unit: venv
	@$(BIN)/python -m pytest tests/unit

## Sets up (PostgreSQL and a lifetimes virtualenv included), runs the benchmarks on sizes S and M,
## prints the table and writes var/bench/results.{md,json} (docs/benchmarks.md). BENCH_ARGS="--sizes S" is quicker.
bench: venv
	@bash scripts/install_system_deps.sh
	@$(BIN)/python -m bench.run $(BENCH_ARGS)

lock: venv
	@(head -2 requirements.lock; $(BIN)/pip freeze --exclude-editable | grep -v '^-e' | sort -f) > requirements.lock.new
	@mv requirements.lock.new requirements.lock

clean:
	rm -rf var
