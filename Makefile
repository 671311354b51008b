# The two commands of README.md: `make demo` and `make test`. Both run in a virtual environment
# of their own (.venv), so they work with a distribution's Python (PEP 668: Debian's
# /usr/bin/python3 refuses `pip install` outside one), with pyenv, and in CI.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The tests that need PostgreSQL: the second lane (the pg17 container) runs only these.
PG_TESTS ?= tests/postgres tests/supabase tests/scenarios
# Long tests that need no PostgreSQL (fresh virtual environments, the demo's minute): the second
# lane, the shorter one, runs them instead of the first, so that both end about together.
OTHER_SLOW ?= tests/install tests/sqlite/test_demo.py

.PHONY: venv install demo test test-local test-container test-image test-fast lint bench

venv: $(PY)

$(PY):
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "Error: cannot create a virtual environment with $(PYTHON)."; \
	  echo "Hint: on Debian or Ubuntu: apt-get install python3-venv (or set PYTHON=python3.11)."; \
	  exit 1; }
	@$(PIP) install -q --upgrade pip

install: $(PY)
	$(PIP) install -q -e '.[test]'

# only what the demo needs: the package itself (SQLite is in the standard library)
demo: $(PY)
	$(PIP) install -q -e .
	$(PY) -m scheduler_admin.demo

# Both lanes at once, each timed: the whole suite on the local binaries (Debian's PostgreSQL +
# pg_cron), and the PostgreSQL tests on PostgreSQL 17 + pg_cron 1.6 in a container
# (SCHEDULER_TEST_SERVER). Each lane has its own server, port and temporary directory; most of
# their time is spent waiting for pg_cron's ticks, so together they take about as long as the
# longer one. Each lane's output is printed whole when both are done (LANES: where it is kept).
LANES ?= $(or $(TMPDIR),/tmp)/scheduler-lanes
test: install test-image
	bash scripts/install-postgres.sh
	@mkdir -p $(LANES); t0=$$(date +%s); \
	$(MAKE) --no-print-directory test-local > $(LANES)/local.log 2>&1 & local=$$!; \
	$(MAKE) --no-print-directory test-container > $(LANES)/container.log 2>&1 & container=$$!; \
	l=0; wait $$local || l=$$?; c=0; wait $$container || c=$$?; \
	cat $(LANES)/local.log $(LANES)/container.log; \
	echo "both lanes: $$(( $$(date +%s) - t0 )) s (local exit $$l, container exit $$c)"; \
	test $$l -eq 0 && test $$c -eq 0

test-local:
	@t0=$$(date +%s); status=0; \
	$(PY) -m pytest --durations=10 --basetemp=$(LANES)/tmp-local \
	$(foreach t,$(OTHER_SLOW),--ignore=$(t)) || status=$$?; \
	echo "local lane: $$(( $$(date +%s) - t0 )) s (exit $$status)"; exit $$status

test-container:
	@t0=$$(date +%s); status=0; SCHEDULER_TEST_SERVER=container \
	$(PY) -m pytest --durations=10 -p no:cacheprovider --basetemp=$(LANES)/tmp-container $(PG_TESTS) \
	$(OTHER_SLOW) \
	|| status=$$?; \
	echo "container lane: $$(( $$(date +%s) - t0 )) s (exit $$status)"; exit $$status

# The container lane's image (skipped when it exists); starts dockerd when none answers.
test-image:
	bash scripts/build-pg17-image.sh

test-fast: install
	$(PY) -m pytest -m "not slow"

# the documentation site (mkdocs.yml, docs/): built --strict, so a broken link between its pages,
# to a heading, or from README.md (docs/hooks/readme_links.py) fails; built outside the repository
DOCS_SITE ?= $(or $(TMPDIR),/tmp)/scheduler-docs-site
# the distributions as they would be published (docs/use-in-your-app.md): `python -m build` (the
# sdist, then the wheel built from it) outside the repository, then `twine check --strict` (the
# metadata and README.md's rendering)
LINT_DIST ?= $(or $(TMPDIR),/tmp)/scheduler-lint-dist
lint: $(PY)
	$(PIP) install -q -e '.[test,lint]'
	$(PY) -m ruff check scheduler_admin tests migrations benchmarks
	$(PY) -m ruff format --check scheduler_admin tests migrations benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-logo
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir $(DOCS_SITE)
	rm -rf $(LINT_DIST)
	$(PY) -m build --quiet --outdir $(LINT_DIST) .
	$(VENV)/bin/twine check --strict $(LINT_DIST)/*

bench: install
	$(PY) -m benchmarks
