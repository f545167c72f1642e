# The habits: make demo, make test, make lint, make bench.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench deps clean

$(BIN)/pvegit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Debian packages the simulated Proxmox nodes need (real OpenSSH servers);
# installed only when running as root and missing.
deps:
	@if [ "$$(id -u)" = 0 ] && ! [ -x /usr/sbin/sshd ]; then \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			openssh-server openssh-client openssl >/dev/null; \
	fi

demo: $(BIN)/pvegit
	$(BIN)/pvegit --home ./pvegit-home demo

test: $(BIN)/pvegit deps
	$(BIN)/pytest

lint: $(BIN)/pvegit
	$(BIN)/ruff check pvegit tests bench
	$(BIN)/ruff format --check pvegit tests bench
	$(BIN)/mypy

bench: $(BIN)/pvegit deps
	$(BIN)/python bench/snapshot_speed.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/repo_growth.py

clean:
	rm -rf $(VENV) pvegit-home .pytest_cache .mypy_cache .ruff_cache
