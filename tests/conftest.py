"""Shared fixtures: a real PostgreSQL with pg_cron preloaded.

Server choice (``SCHEDULER_TEST_SERVER``): ``local`` (default) uses ``SCHEDULER_TEST_DSN`` (an
existing server whose database is cron.database_name), else a throwaway cluster started from the
local PostgreSQL binaries; ``container`` starts a server in the image ``SCHEDULER_TEST_IMAGE``
(default ``scheduler-test-pg17-cron:latest``: PostgreSQL 17 + pg_cron 1.6) through
testcontainers. Without a server the PostgreSQL tests are skipped, except when
``SCHEDULER_REQUIRE_POSTGRES=1`` (CI sets it): then they fail, and the session fails if no
PostgreSQL test ran. Under ``SCHEDULER_REQUIRE_POSTGRES=1`` every skip is a failure, whatever its
reason (skip_helpers.py).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from pg_helpers import Server, connect, db_now, migrate, reset
from skip_helpers import REQUIRE_POSTGRES, no_skip_message, require_or_skip

from scheduler_admin.testing.cluster import ClusterError
from scheduler_admin.testing.lanes import describe_lane, server_lane, throwaway_server

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


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under SCHEDULER_REQUIRE_POSTGRES a skipped test fails, whatever skipped it (an expected
    failure, xfail, is not a skip: it ran)."""
    report = yield
    if REQUIRE_POSTGRES and report.skipped and not hasattr(report, "wasxfail"):
        report.longrepr = no_skip_message(f"it was skipped: {_skip_reason(report.longrepr)}")
        report.outcome = "failed"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """The same for a module skipped as a whole while it is collected."""
    report = yield
    if REQUIRE_POSTGRES and report.skipped:
        report.longrepr = no_skip_message(f"it was skipped: {_skip_reason(report.longrepr)}")
        report.outcome = "failed"
    return report


def _check_clock(dsn: str) -> None:
    """clock_helpers.future_on() reads this machine's clock: the server's must agree with it."""
    with connect(dsn) as conn:
        skew = abs(db_now(conn) - datetime.now(timezone.utc))
    assert skew < timedelta(minutes=5), (
        f"the server's clock is {skew} away from this machine's; the tests' future times "
        "(clock_helpers.py) are computed from this machine's clock"
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    try:
        lane = server_lane()
    except ClusterError as exc:
        pytest.fail(str(exc))  # a typo in SCHEDULER_TEST_SERVER is never a skip
    dsn = os.environ.get("SCHEDULER_TEST_DSN")
    if dsn and lane == "local":
        url = dsn  # the CLI and backends accept a URL or a key=value conninfo
        _check_clock(dsn)
        yield Server(dsn, url, None)
        return
    try:
        with throwaway_server() as cluster:
            _check_clock(cluster.dsn())
            yield Server(cluster.dsn(), cluster.url(), cluster)
    except ClusterError as exc:
        require_or_skip(f"could not start a throwaway server ({lane} lane): {exc}")


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
