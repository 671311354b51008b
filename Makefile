# The two commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install demo test test-fast lint bench

install:
	$(PIP) install -q -e '.[test]'

demo: install
	$(PYTHON) -m scheduler_admin.demo

test: install
	bash scripts/install-postgres.sh
	$(PYTHON) -m pytest

test-fast: install
	$(PYTHON) -m pytest -m "not slow"

lint:
	$(PYTHON) -m ruff check scheduler_admin tests migrations benchmarks
	$(PYTHON) -m mypy

bench: install
	$(PYTHON) -m benchmarks
