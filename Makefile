# bus389 — the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup system-packages venv kafka demo down test unit integration lint bench clean

setup: venv system-packages

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

system-packages:
	bash deploy/install-system-packages.sh

kafka: venv
	$(BIN)/bus389 kafka up
	$(BIN)/bus389 topics apply

## The main job on the local default: Kafka, topics, the services, the three users' flows.
demo: setup
	bash deploy/demo.sh

## Stop everything `make demo` started (services, then Kafka).
down: venv
	bash deploy/demo.sh down

## The whole suite: lint, types, unit and integration tests against a real broker.
test: setup lint
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest tests/unit tests/fuzz

integration: setup
	$(BIN)/pytest tests/integration

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bus389
	$(BIN)/lint-imports
	$(BIN)/python tests/_lint/check_tests.py tests

bench: setup
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bus389.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
