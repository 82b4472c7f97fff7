# The two commands of the README: `make demo` and `make test`. Both set up a
# virtualenv, generate the protobuf code, and make sure PostgreSQL and Redis answer
# (starting private instances when they do not; see vibe_dev/devinfra.py).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTOS := $(wildcard protos/vibe/*/v1/*.proto)
STAMP := $(VENV)/.installed

HELPER := $(VENV)/bin/vibe-box
CC ?= cc

.PHONY: setup system-deps tools protos demo test up bench check format clean

setup: system-deps $(STAMP) protos tools $(HELPER)

# What submitted programs are compiled and run with (g++, node), and the C compiler that builds
# the sandbox helper; installed from Debian's packages when missing and we are root.
system-deps:
	@missing=""; for tool in cc g++ node; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc g++ libc6-dev nodejs) >/dev/null; \
	  else echo "error: missing$$missing (install gcc, g++ and nodejs)"; exit 1; fi; \
	fi

# The sandbox helper (vibe/services/scoring/vibe-box.c): static when the C library allows, so that it
# starts in a fraction of a millisecond; it runs as root, so it is built root-owned, mode 0755.
$(HELPER): vibe/services/scoring/vibe-box.c $(STAMP)
	$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $< 2>/dev/null || $(CC) -O2 -Wall -Wextra -Werror -o $@ $<
	chmod 0755 $@

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# buf (protobuf lint, scripts/check), pinned in tools/buf/package-lock.json and installed
# there, not globally; it comes from the npm registry, so without npm it is left out
# (scripts/check then says buf lint did not run).
BUF := tools/buf/node_modules/.bin/buf
tools: $(BUF)

$(BUF): tools/buf/package.json tools/buf/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tools/buf --no-audit --no-fund --silent && touch $@; \
	else echo "note: npm is not installed; buf (protobuf lint) is not available to scripts/check"; fi

# Generated stubs go to vibe_api/<service>/v1/ (never committed or edited); the
# package build runs the same generator (setup.py), so `pip install .` ships them.
protos: $(STAMP) vibe_api/.stamp

vibe_api/.stamp: $(PROTOS) vibe_dev/protos.py
	$(PY) -m vibe_dev.protos
	touch $@

demo: setup
	$(PY) -m vibe_dev.devinfra run -- $(PY) -m vibe_dev.cli demo

test: setup
	$(PY) -m vibe_dev.devinfra run -- $(PY) -m pytest -q $(PYTEST_ARGS)

up: setup
	$(PY) -m vibe_dev.devinfra run -- $(PY) -m vibe_dev.cli up

# The benchmarks one after another (each prints its own medians and ratios); BENCH_ARGS
# is passed to each, e.g. `make bench BENCHES=bench_llm BENCH_ARGS="--turns 5"`.
BENCHES ?= bench_llm bench_eval_throughput bench_tracing bench_sandbox bench_guards
bench: setup
	$(PY) -m vibe_dev.devinfra run -- sh -c 'set -e; for b in $(BENCHES); do echo "== $$b"; $(PY) -m bench.$$b $(BENCH_ARGS); done'

# The static checks CI runs before the tests (scripts/check); `make format` applies
# ruff's formatting and its safe fixes.
check: setup
	scripts/check

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) vibe_api tools/buf/node_modules
