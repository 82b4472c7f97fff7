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

.PHONY: setup system-deps tools web browser protos demo test up bench check format clean

setup: system-deps $(STAMP) protos tools web $(HELPER)

# What submitted programs are compiled and run with (g++, node), the C compiler that builds
# the sandbox helper, and npm (the web page's bundle, buf); installed from Debian's packages when missing and we are root.
system-deps:
	@missing=""; for tool in cc g++ node npm; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc g++ libc6-dev nodejs npm) >/dev/null; \
	  else echo "error: missing$$missing (install gcc, g++, nodejs and npm)"; exit 1; fi; \
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

# The web page's script: CodeMirror, markdown-it, DOMPurify and the page's modules
# (vibe/services/gateway/web/src/) bundled by esbuild into web/static/app.js, which is not
# committed (a generated file); the packages are pinned in tools/web/package-lock.json and
# installed there from the npm registry. The package build (setup.py) and the Dockerfile's web
# stage run the same build; a gateway without the bundle says so instead of serving the page.
WEB := tools/web
BUNDLE := vibe/services/gateway/web/static/app.js
web: $(BUNDLE)

$(WEB)/node_modules/.stamp: $(WEB)/package.json $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund --silent
	touch $@

$(BUNDLE): $(WEB)/node_modules/.stamp $(WEB)/build.mjs $(wildcard vibe/services/gateway/web/src/*.js)
	node $(WEB)/build.mjs

# The browser tests (tests/test_web_pages.py) drive Debian's Chromium through chromedriver, with
# a Korean font for the Korean interface's screenshots: installed when missing and we are root,
# else this fails saying what to install (and so would the tests).
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 || ! [ -d /usr/share/fonts/opentype/noto ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk) >/dev/null; \
	  else echo "error: the browser tests need chromium, chromedriver and a Korean font (Debian: apt-get install chromium chromium-driver fonts-noto-cjk)"; exit 1; fi; \
	fi

# Generated stubs go to vibe_api/<service>/v1/ (never committed or edited); the
# package build runs the same generator (setup.py), so `pip install .` ships them.
protos: $(STAMP) vibe_api/.stamp

vibe_api/.stamp: $(PROTOS) vibe_dev/protos.py
	$(PY) -m vibe_dev.protos
	touch $@

demo: setup
	$(PY) -m vibe_dev.devinfra run -- $(PY) -m vibe_dev.cli demo

test: setup browser
	$(PY) -m vibe_dev.devinfra run -- $(PY) -m pytest -q $(PYTEST_ARGS)

up: setup
	$(PY) -m vibe_dev.devinfra run -- $(PY) -m vibe_dev.cli up

# The benchmarks one after another (each prints its own medians and ratios); BENCH_ARGS
# is passed to each, e.g. `make bench BENCHES=bench_llm BENCH_ARGS="--turns 5"`.
# All of them together are meant to stay under 10 minutes (on a 2-core machine: about 2 for the first
# four, 4.5 for bench_submit, 3.5 for bench_chat).
BENCHES ?= bench_llm bench_chat bench_eval_throughput bench_tracing bench_sandbox bench_submit bench_guards
# Every one runs even when an earlier one missed a target (exit status 1 then, naming them).
bench: setup
	$(PY) -m vibe_dev.devinfra run -- sh -c 'failed=""; for b in $(BENCHES); do echo "== $$b"; $(PY) -m bench.$$b $(BENCH_ARGS) || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "missed a target or failed:$$failed"; exit 1; fi'

# The static checks CI runs before the tests (scripts/check); `make format` applies
# ruff's formatting and its safe fixes.
check: setup
	scripts/check

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) vibe_api tools/buf/node_modules $(WEB)/node_modules $(BUNDLE)
