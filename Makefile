# The two commands: `make run` and `make test`. Both install what is missing first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-services lint format bench paper install clean

run: $(STAMP)
	$(BIN)/python -m aiotrade serve

test: $(STAMP) test-services
	$(BIN)/python -m pytest -q

# Real PostgreSQL for the store and chaos tests (the tests start and stop their own server).
test-services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		echo "installing PostgreSQL (apt) for the test suite"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

paper: $(STAMP)
	$(BIN)/python -m aiotrade paper

install: $(STAMP)

# Reinstalls when pyproject.toml changes; a fresh machine needs only Python 3.11+.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
