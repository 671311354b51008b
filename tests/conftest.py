"""Shared fixtures: a real PostgreSQL with pg_cron preloaded.

Server choice (``SCHEDULER_TEST_SERVER``): ``local`` (default) uses ``SCHEDULER_TEST_DSN`` (an
existing server whose database is cron.database_name), else a throwaway cluster started from the
local PostgreSQL binaries; ``container`` starts a server in the image ``SCHEDULER_TEST_IMAGE``
(default ``scheduler-test-pg17-cron:latest``: PostgreSQL 17 + pg_cron 1.6) through
testcontainers. Without a server the PostgreSQL tests are skipped, except when
``SCHEDULER_REQUIRE_POSTGRES=1`` (CI sets it): then they fail, and the session fails if no
PostgreSQL test ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from pg_helpers import Server, connect, migrate, reset

from scheduler_admin.testing.cluster import ClusterError
from scheduler_admin.testing.lanes import describe_lane, server_lane, throwaway_server

REQUIRE_POSTGRES = os.environ.get("SCHEDULER_REQUIRE_POSTGRES", "") not in ("", "0", "false")
_postgres_tests_run = 0


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [describe_lane()]


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
    try:
        lane = server_lane()
    except ClusterError as exc:
        pytest.fail(str(exc))  # a typo in SCHEDULER_TEST_SERVER is never a skip
    dsn = os.environ.get("SCHEDULER_TEST_DSN")
    if dsn and lane == "local":
        url = dsn  # the CLI and backends accept a URL or a key=value conninfo
        yield Server(dsn, url, None)
        return
    try:
        with throwaway_server() as cluster:
            yield Server(cluster.dsn(), cluster.url(), cluster)
    except ClusterError as exc:
        _unavailable(f"could not start a throwaway server ({lane} lane): {exc}")


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


MEETINGS_INDEX = "meetings_upcoming_end_time_idx"


@pytest.fixture
def bare_database(
    db: psycopg.Connection[tuple[object, ...]], migrated: Server
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """The test database with nothing of ours and the meetings table moved aside; afterwards
    anything of ours is removed again and the original table put back."""
    migrate(migrated, "base", down=True)
    db.execute("alter table public.meetings rename to meetings_aside")
    # the migration names the index it creates on a new meetings table: keep that name free
    db.execute(f"alter index if exists public.{MEETINGS_INDEX} rename to {MEETINGS_INDEX}_aside")
    try:
        yield db
    finally:
        migrate(migrated, "base", down=True)
        db.execute("drop table if exists public.meetings")
        db.execute("alter table public.meetings_aside rename to meetings")
        db.execute(
            f"alter index if exists public.{MEETINGS_INDEX}_aside rename to {MEETINGS_INDEX}"
        )
