# The two commands of the README: `make demo` and `make test`. Both set up a
# virtualenv, generate the protobuf code, and make sure PostgreSQL and Redis answer
# (starting private instances when they do not; see vibe/devinfra.py).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTOS := $(wildcard protos/vibe/*/v1/*.proto)
STAMP := $(VENV)/.installed

HELPER := $(VENV)/bin/vibe-box
CC ?= cc

.PHONY: setup system-deps protos demo test up bench clean

setup: system-deps $(STAMP) protos $(HELPER)

# What submitted programs are compiled and run with (g++, node), and the C compiler that builds
# the sandbox helper; installed from Debian's packages when missing and we are root.
system-deps:
	@missing=""; for tool in cc g++ node; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc g++ libc6-dev nodejs) >/dev/null; \
	  else echo "error: missing$$missing (install gcc, g++ and nodejs)"; exit 1; fi; \
	fi

# The sandbox helper (scoring_service/vibe-box.c): static when the C library allows, so that it
# starts in a fraction of a millisecond; it runs as root, so it is built root-owned, mode 0755.
$(HELPER): scoring_service/vibe-box.c $(STAMP)
	$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $< 2>/dev/null || $(CC) -O2 -Wall -Wextra -Werror -o $@ $<
	chmod 0755 $@

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Generated code goes next to the common package (vibe/<service>/v1/) and is never
# committed or edited; `-I protos` makes imports read `from vibe.tutor.v1 import tutor_pb2`.
protos: $(STAMP) vibe/.protos-stamp

vibe/.protos-stamp: $(PROTOS)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch $@

demo: setup
	$(PY) -m vibe.devinfra run -- $(PY) -m vibe.cli demo

test: setup
	$(PY) -m vibe.devinfra run -- $(PY) -m pytest -q $(PYTEST_ARGS)

up: setup
	$(PY) -m vibe.devinfra run -- $(PY) -m vibe.cli up

clean:
	rm -rf $(VENV) vibe/.protos-stamp
	find vibe -path '*/v1/*_pb2*.py*' -delete
