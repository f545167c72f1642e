# The habits: make demo, make test, make lint, make bench.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench drills deps clean

$(BIN)/pvegit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# An editable install has no bytecode, and where PYTHONDONTWRITEBYTECODE is set every
	# `pvegit` start would compile its ~75 modules again (~0.2 s): compile them once.
	$(BIN)/python -m compileall -q pvegit web testbed >/dev/null
	touch $@

# What the tests need: real OpenSSH servers for the simulated Proxmox nodes, sudo
# (a node's backup user allowed the collector alone), Chromium for the browser tests (Debian packages), and Proxmox's own pmxcfs for
# their /etc/pve, built from ../shared/pmxcfs when it is beside this clone.
# Installed only as root, when missing.
PMXCFS_SOURCE ?= ../shared/pmxcfs
deps:
	@if [ "$$(id -u)" = 0 ] && { ! [ -x /usr/sbin/sshd ] || ! command -v chromium >/dev/null || ! command -v sudo >/dev/null; }; then \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			openssh-server openssh-client openssl chromium sudo >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ] && [ -f $(PMXCFS_SOURCE)/build.sh ]; then \
		echo "pmxcfs: $$(sh $(PMXCFS_SOURCE)/build.sh)"; \
	fi

# A demo node with some history, an admin with a one-time password, the web UI.
demo: $(BIN)/pvegit
	$(BIN)/pvegit --home ./pvegit-home demo --listen 127.0.0.1:8080

# One pytest worker per core (pytest-xdist): each has its own session test bed.
test: $(BIN)/pvegit deps
	$(BIN)/pytest -n auto --dist worksteal

lint: $(BIN)/pvegit
	$(BIN)/ruff check pvegit web testbed tests bench
	$(BIN)/ruff format --check pvegit web testbed tests bench
	$(BIN)/mypy

# The benchmarks run the `pvegit` command as users do: the venv's comes first on PATH.
bench drills: export PATH := $(abspath $(BIN)):$(PATH)
bench: $(BIN)/pvegit deps
	$(BIN)/python bench/snapshot_speed.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/repo_growth.py
	$(BIN)/python bench/web_speed.py

# The reliability drills at full length (docs/reliability.md): ~10 minutes, as root.
drills: $(BIN)/pvegit deps
	$(BIN)/python bench/fuzz_tar.py --seconds 60
	$(BIN)/python bench/kill_loop.py --kills 50
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/load.py --seconds 60

clean:
	rm -rf $(VENV) pvegit-home .pytest_cache .mypy_cache .ruff_cache
