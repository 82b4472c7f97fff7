# The two commands of the README: `make demo` and `make test`. Both set up a
# virtualenv, generate the protobuf code, and make sure PostgreSQL and Redis answer
# (starting private instances when they do not; see vibe_dev/devinfra.py).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTOS := $(wildcard protos/vibe/*/v1/*.proto)
STAMP := $(VENV)/.installed

.PHONY: setup system-deps protos demo test up bench clean

setup: system-deps $(STAMP) protos

# Debian packages the sandbox uses (bubblewrap); installed when missing and we are
# root, otherwise the sandbox says it runs with rlimits only.
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null; } \
	  || echo "note: bubblewrap is not installed; the code sandbox falls back to rlimits + process groups"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

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

clean:
	rm -rf $(VENV) vibe_api
