"""Fixtures of the SQLite suite: a migrated database file per test and an injectable clock."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlite_helpers import FakeClock

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.migrate import upgrade
from scheduler_admin.sqlite.worker import CronWorker

UTC = timezone.utc


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated once with alembic; tests get copies of it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(url=sqlite_url(path))
    return path


@pytest.fixture
def db_path(template_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "scheduler.db"
    shutil.copyfile(template_db, path)
    return path


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain application connection (autocommit), like any client of the database."""
    connection = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    connection.row_factory = sqlite3.Row
    yield connection
    connection.close()


@pytest.fixture
def clock() -> FakeClock:
    # Real time matters: the triggers compare end times with SQLite's own 'now'. Start the fake
    # clock at the real current minute, so meetings "in the future" are in the real future too.
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def backend(db_path: Path, clock: FakeClock) -> Iterator[SqliteBackend]:
    instance = SqliteBackend(sqlite_url(db_path), clock=clock)
    yield instance
    instance.close()


@pytest.fixture
def worker(backend: SqliteBackend, clock: FakeClock) -> CronWorker:
    return CronWorker(backend, clock=clock)
