# The two commands of the README. Each creates .venv when missing and installs
# the package into it (editable), so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-install when the package metadata changes.
$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[plot]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,plot]'
	touch $@

demo: $(VENV)/.demo-installed
	$(PY) examples/logistic_regression.py

test: $(VENV)/.test-installed
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
