"""Shared fixtures: a real PostgreSQL with pg_cron preloaded.

Server choice: ``SCHEDULER_TEST_DSN`` (an existing server whose database is cron.database_name),
else a throwaway cluster started from the local PostgreSQL binaries. Without either the
PostgreSQL tests are skipped, except when ``SCHEDULER_REQUIRE_POSTGRES=1`` (CI sets it): then they
fail, and the session fails if no PostgreSQL test ran.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from pg_helpers import Server, connect, migrate, reset

from scheduler_admin.testing.cluster import (
    ClusterError,
    find_bindir,
    pg_cron_available,
    throwaway_cluster,
)

REQUIRE_POSTGRES = os.environ.get("SCHEDULER_REQUIRE_POSTGRES", "") not in ("", "0", "false")
_postgres_tests_run = 0


def pytest_report_header(config: pytest.Config) -> list[str]:
    if os.environ.get("SCHEDULER_TEST_DSN"):
        return ["postgres: SCHEDULER_TEST_DSN"]
    bindir = find_bindir()
    if bindir is None:
        return ["postgres: no local binaries (PostgreSQL tests will be skipped)"]
    version = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    cron = "pg_cron installed" if pg_cron_available(bindir) else "pg_cron MISSING"
    return [f"postgres: throwaway cluster from {bindir} ({version}, {cron})"]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _postgres_tests_run
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _postgres_tests_run += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_POSTGRES and _postgres_tests_run == 0 and exitstatus == 0:
        session.config.get_terminal_writer().line(
            "SCHEDULER_REQUIRE_POSTGRES is set but no PostgreSQL test passed", red=True
        )
        session.exitstatus = 1


def _unavailable(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"PostgreSQL tests required (SCHEDULER_REQUIRE_POSTGRES) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    dsn = os.environ.get("SCHEDULER_TEST_DSN")
    if dsn:
        url = dsn  # the CLI and backends accept a URL or a key=value conninfo
        yield Server(dsn, url, None)
        return
    bindir = find_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL binaries found (install postgresql-15)")
    assert bindir is not None
    if not pg_cron_available(bindir):
        _unavailable(f"pg_cron is not installed for {bindir} (install postgresql-15-cron)")
    try:
        with throwaway_cluster(bindir=bindir) as cluster:
            yield Server(cluster.dsn(), cluster.url(), cluster)
    except ClusterError as exc:
        _unavailable(f"could not start a throwaway cluster: {exc}")


@pytest.fixture(scope="session")
def migrated(pg_server: Server) -> Server:
    migrate(pg_server)
    return pg_server


@pytest.fixture
def db(migrated: Server) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the migrated database, with no meeting and no job of ours."""
    with connect(migrated.dsn) as conn:
        migrate(migrated)  # a test may have downgraded
        reset(conn)
        yield conn
        migrate(migrated)
        reset(conn)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
