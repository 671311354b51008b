# The two commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# The tests that need PostgreSQL: the second lane (the pg17 container) runs only these.
PG_TESTS ?= tests/postgres tests/supabase tests/scenarios

.PHONY: install demo test test-local test-container test-image test-fast lint bench

install:
	$(PIP) install -q -e '.[test]'

demo: install
	$(PYTHON) -m scheduler_admin.demo

# Both lanes, each timed: the whole suite on the local binaries (Debian's PostgreSQL + pg_cron),
# then the PostgreSQL tests on PostgreSQL 17 + pg_cron 1.6 in a container (SCHEDULER_TEST_SERVER).
test: install test-image
	bash scripts/install-postgres.sh
	$(MAKE) --no-print-directory test-local
	$(MAKE) --no-print-directory test-container

test-local:
	@t0=$$(date +%s); status=0; $(PYTHON) -m pytest || status=$$?; \
	echo "local lane: $$(( $$(date +%s) - t0 )) s (exit $$status)"; exit $$status

test-container:
	@t0=$$(date +%s); status=0; SCHEDULER_TEST_SERVER=container $(PYTHON) -m pytest $(PG_TESTS) || status=$$?; \
	echo "container lane: $$(( $$(date +%s) - t0 )) s (exit $$status)"; exit $$status

# The container lane's image (skipped when it exists); starts dockerd when none answers.
test-image:
	bash scripts/build-pg17-image.sh

test-fast: install
	$(PYTHON) -m pytest -m "not slow"

lint:
	$(PIP) install -q -e '.[test,lint]'
	$(PYTHON) -m ruff check scheduler_admin tests migrations benchmarks
	$(PYTHON) -m ruff format --check scheduler_admin tests migrations benchmarks
	$(PYTHON) -m mypy

bench: install
	$(PYTHON) -m benchmarks
