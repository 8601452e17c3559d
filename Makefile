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

# Real PostgreSQL, Redis and Chromium for the tests that need them (the tests start and stop their own
# servers); installed with apt where missing.
test-services:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (apt) for the test suite"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench loadtest
	$(BIN)/ruff format --check src tests bench loadtest

format: $(STAMP)
	$(BIN)/ruff format src tests bench loadtest
	$(BIN)/ruff check --fix src tests bench loadtest

bench: $(STAMP)
	$(BIN)/python -m bench

paper: $(STAMP)
	$(BIN)/python -m aiotrade paper

install: $(STAMP)

# Reinstalls when pyproject.toml changes; a fresh machine needs only Python 3.11+.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,bench,tracing]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info

# Load test and soak (loadtest/): locust headless against PostgreSQL, Redis, the paper exchange and several
# `aiotrade serve` processes on loopback; reports in $TMPDIR/aiotrade-loadtest. The soak fails (exit 1)
# unless memory stays flat after warm-up, with 0 errors, 0 duplicate orders and 0 x 429 at the venue.
.PHONY: loadtest soak
loadtest: $(STAMP) test-services
	$(BIN)/python -m loadtest --seconds $${AIOTRADE_LOADTEST_SECONDS:-60}

soak: $(STAMP) test-services
	$(BIN)/python -m loadtest --soak --minutes $${AIOTRADE_SOAK_MINUTES:-10}
