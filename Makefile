# Two entry points do all their own set-up on a fresh machine:
#   make demo   -> runs the main job on the built-in synthetic cohort
#   make test   -> runs the test suite (what CI runs, via .ci/run)
# The virtual environment is created once; a second run only re-checks a stamp file.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.octseg-installed
# The CPU build of torch is installed first, from the local wheel folder when it exists, so
# that resolving monai & co. never pulls multi-gigabyte CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),)
PYTEST_ARGS ?=

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(FIND_LINKS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q $(FIND_LINKS) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m octseg.demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) demo_output runs outputs
