# Two entry points for a new user: `make run` and `make test`. Both create .venv and install
# everything (Debian packages too, when run as root); a second run skips installs that are current.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := libisal2 dataset-fashion-mnist
APT_STAMP := $(VENV)/.apt-installed

.PHONY: run test lint format bench docs clean

run: $(STAMP)
	$(BIN)/redundancy reproduce --quick

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/erasure_bench.py
	$(BIN)/python benchmarks/erasure_store_bench.py

$(APT_STAMP):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  pkgs="$(APT_PACKAGES)"; \
	  $(PYTHON) -c "import ensurepip" 2>/dev/null || pkgs="$$pkgs python3-venv"; \
	  if ! dpkg -s $$pkgs >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs; \
	  fi; \
	else \
	  echo "note: not root; skipping Debian packages ($(APT_PACKAGES)); pure-Python fallbacks are used"; \
	fi
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@touch $@

$(STAMP): pyproject.toml $(APT_STAMP)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[all,dev,bench]'
	@touch $@

clean:
	rm -rf $(VENV) reports build src/*.egg-info
