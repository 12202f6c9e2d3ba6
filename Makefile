# Two commands do everything on a fresh machine:
#   make run    set up, then run the whole course (notebooks 01-07) on the embedded synthetic data
#   make test   set up, then run the whole test suite (unit tests + notebooks under nbval)
# Set-up creates .venv with python3.11 unless a virtual or conda environment is already active.
# Python 3.12 works too, in its own environment:  PYTHON_SYSTEM=python3.12 VENV=.venv312 make test

SHELL := /bin/bash
PYTHON_SYSTEM ?= python3.11
VENV ?= .venv

ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)),)
  PY := python
  ENV_DIR := $(firstword $(VIRTUAL_ENV) $(CONDA_PREFIX))
else
  PY := $(VENV)/bin/python
  ENV_DIR := $(VENV)
endif
STAMP := $(ENV_DIR)/.stamp-course-install

export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0
export MPLBACKEND ?= Agg
export GLOG_minloglevel ?= 2

.PHONY: run test test-fast lint lab bench web setup clean help

help:
	@echo "make run    - set up and run the whole course on the synthetic default data (results/)"
	@echo "make test   - set up, check the code with ruff, and run all tests (unit + notebooks under nbval)"
	@echo "make lint   - check the code with ruff (style, imports, likely bugs; settings in pyproject.toml)"
	@echo "make lab    - set up and open the course in JupyterLab"
	@echo "make bench  - speed and memory of the models on this machine"
	@echo "make web RUN=<run folder>  - the browser page of a trained keypoint model, in web_build/ (needs npm)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@if [ "$(ENV_DIR)" = "$(VENV)" ] && [ ! -x $(VENV)/bin/python ]; then \
	  if ! command -v $(PYTHON_SYSTEM) >/dev/null 2>&1; then \
	    echo "error: $(PYTHON_SYSTEM) was not found. This course needs Python 3.11 or 3.12 (mediapipe 0.10.21"; \
	    echo "       and tensorflow 2.19 have no wheels for other versions). Install one (pyenv install 3.11,"; \
	    echo "       apt install python3.11 python3.11-venv, or conda create -n course python=3.11) and run"; \
	    echo "       make again, or point PYTHON_SYSTEM=/path/to/python3.11 (or python3.12) at one."; \
	    exit 1; \
	  fi; \
	  echo ">> creating $(VENV) with $(PYTHON_SYSTEM)"; \
	  $(PYTHON_SYSTEM) -m venv $(VENV) || { echo "error: could not create $(VENV) (on Debian/Ubuntu: apt install python3.11-venv)"; exit 1; }; \
	fi
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12)) else 1)' || { \
	  echo "error: $(ENV_DIR) runs Python $$($(PY) -c 'import platform; print(platform.python_version())'), the course needs 3.11 or 3.12."; \
	  echo "       Deactivate that environment (or delete $(VENV), or choose another with VENV=...) and run make again."; exit 1; }
	@echo ">> installing pinned requirements into $(ENV_DIR) (first time only: a few minutes)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@touch $@

run: $(STAMP)
	$(PY) -m utils course

# ruff: pycodestyle, pyflakes, import order, bugbear and pyupgrade rules ([tool.ruff] in pyproject.toml).
# A second or two, so `make test` runs it first.
lint: $(STAMP)
	$(PY) -m ruff check utils tests benchmarks

# Lint, then the unit tests, then the notebooks under nbval (lax: outputs are not compared) in FAST mode.
test: lint
	FAST=1 $(PY) -m pytest tests notebooks --nbval-lax --nbval-cell-timeout=900 --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow"

lab: $(STAMP)
	$(PY) -m jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m benchmarks.speed

# The static page that recognises signs in the browser (docs/web.md): needs Node.js/npm, a keypoint run.
WEB ?= web_build
web: $(STAMP)
	@test -n "$(RUN)" || { echo "usage: make web RUN=<run folder written by train> [WEB=$(WEB)]"; exit 1; }
	$(PY) -m utils export --model $(RUN) --web $(WEB)
	@echo "serve it with:  $(PY) -m http.server -d $(WEB) 8000   and open http://localhost:8000"

clean:
	rm -rf results .pytest_cache
