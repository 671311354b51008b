"""The scenario suite runs every test once per backend: ``adapter`` is parametrized over
"postgres" (the shared throwaway cluster, reset by the ``db`` fixture of tests/conftest.py) and
"sqlite" (a copy of a database file migrated once with alembic)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from scenario_adapters import Adapter, PostgresAdapter, SqliteAdapter

from scheduler_admin.migrate import upgrade


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario-template") / "template.db"
    upgrade(url=f"sqlite:///{path}")
    return path


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Adapter]:
    instance: Adapter
    if request.param == "postgres":
        request.getfixturevalue("db")  # isolation: no meeting, no job of ours, before and after
        server = request.getfixturevalue("migrated")
        instance = PostgresAdapter(server.url)
    else:
        path = tmp_path / "scheduler.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        instance = SqliteAdapter(path)
    yield instance
    instance.close()
