# avseld — the two commands of the README are `make test` and `make reproduce`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= default
WORKDIR ?= .
STAMP := $(VENV)/.installed
MAKE_STARTED := $(shell date +%s)  # when make began, before any install: figures/study_timings.* report it
# `make lock`: uv, at a fixed version, in a scratch venv under build/ (git-ignored; `make clean` removes it).
# The lock is resolved for CPython 3.11.7 on Linux x86-64 (manylinux_2_28: torch's wheels need it).
# LOCK_ARGS passes options to `uv pip compile`, e.g. LOCK_ARGS=--upgrade or LOCK_ARGS='-P numpy'.
UV_VERSION ?= 0.13.9
LOCK_TOOLS ?= build/lock-tools
UV := $(LOCK_TOOLS)/bin/uv
LOCK_ARGS ?=

.PHONY: install test reproduce bench lock clean

# Every dependency comes from requirements.lock (exact versions, hash-checked); the package itself
# is installed editable without dependencies, so pyproject's ranges never pick versions here.
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install --require-hashes -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

reproduce: $(STAMP)
	$(VENV)/bin/avseld reproduce --profile $(PROFILE) --workdir $(WORKDIR) --started-at $(MAKE_STARTED)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# Refresh requirements.lock from pyproject.toml ([project].dependencies + the dev extra). uv keeps
# the versions already in the lock unless pyproject now excludes them or LOCK_ARGS asks to upgrade.
lock:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or set PYTHON=...)"; exit 1; }
	test -x $(UV) && $(UV) --version | grep -qxE 'uv $(UV_VERSION)( .*)?' || { \
	  rm -rf $(LOCK_TOOLS) && $(PYTHON) -m venv $(LOCK_TOOLS) && \
	  $(LOCK_TOOLS)/bin/pip install 'uv==$(UV_VERSION)'; }
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes \
	  --python-version 3.11.7 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command 'make lock' $(LOCK_ARGS) -o requirements.lock >/dev/null

clean:
	rm -rf $(VENV) build *.egg-info
