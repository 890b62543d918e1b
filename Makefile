# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENDOR ?= local

.PHONY: venv test lint typecheck pytest demo sandbox clean browser

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

# Debian's Chromium, for the contact-sheet test in a real browser (no-op when present).
browser:
	bash scripts/install_chromium.sh

pytest: venv browser
	$(BIN)/pytest -q

test: lint typecheck pytest

demo: venv
	$(BIN)/python scripts/demo.py --vendor $(VENDOR)

sandbox: venv
	$(BIN)/bgreplace-sandbox --host 127.0.0.1 --port 8765

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo_output
