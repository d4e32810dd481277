# Everything runs in a project venv that `make` creates on first use (python3 -m venv + pip).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= dev
ARGS   ?=

.PHONY: venv test plan lint bench clean

# Silent, and to stderr: the first `make plan ARGS="--format json"` in a fresh clone must print only JSON.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	@echo "creating $(VENV) (python -m venv, pip install -r requirements-dev.txt)" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/pip install --quiet --upgrade pip >&2
	@$(BIN)/pip install --quiet -r requirements-dev.txt >&2
	@touch $@

venv: $(BIN)/.installed

## The test suite: unit tests under Pulumi mocks, policy rules, pipeline schema, probe against real MariaDB.
test: venv
	$(BIN)/pytest

## Offline plan of STACK (no AWS, no Pulumi CLI): make plan STACK=prod ARGS="--format json"
plan: venv
	@$(BIN)/python -m plan --stack $(STACK) $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy components lambda_src plan policy tools __main__.py

bench: venv
	$(BIN)/python bench/bench_probe.py
	$(BIN)/python bench/bench_plan.py
	$(BIN)/python bench/bench_users.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
