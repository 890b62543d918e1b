# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENDOR ?= all

.PHONY: venv test lint typecheck pytest demo sandbox clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest -q

test: lint typecheck pytest

demo: venv
	$(BIN)/python scripts/demo.py --vendor $(VENDOR)

sandbox: venv
	$(BIN)/bgreplace-sandbox --host 127.0.0.1 --port 8765

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo_output
