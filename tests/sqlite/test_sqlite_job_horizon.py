"""The job horizon on SQLite (issue 25) beyond the scenarios: the migration stores the horizon it
is given (SCHEDULER_JOB_HORIZON) and refuses a bad one; the table refuses a short one whoever
writes it; the CLI shows and sets it, and list-jobs counts the rows beyond it."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_helpers import run, run_json

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.migrate import upgrade

UTC = timezone.utc


def seconds(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT transition, horizon_seconds FROM scheduler_horizons ORDER BY transition"
        ).fetchall()


def test_the_migration_stores_the_horizon_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    monkeypatch.setenv("SCHEDULER_JOB_HORIZON", "1 day 12 hours")
    upgrade(url=f"sqlite:///{path}")
    assert seconds(path) == [("*", 36 * 3600)]
    for bad, reason in (("soon", "cannot read"), ("14m", "at least 15 minutes")):
        monkeypatch.setenv("SCHEDULER_JOB_HORIZON", bad)
        with pytest.raises(InvalidInput, match=reason):
            upgrade(url=f"sqlite:///{path}")
        assert seconds(path) == [("*", 36 * 3600)]
    monkeypatch.setenv("SCHEDULER_JOB_HORIZON", "none")
    upgrade(url=f"sqlite:///{path}")
    assert seconds(path) == []


def test_the_table_refuses_a_horizon_under_15_minutes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    upgrade(url=f"sqlite:///{path}")
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO scheduler_horizons VALUES ('*', 899)")


def test_the_cli_shows_and_sets_the_horizon_and_list_jobs_counts_the_rows_beyond(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.db"
    url = f"sqlite:///{path}"
    upgrade(url=url)
    code, out, err = run(capsys, "--database-url", url, "horizon", "2d")
    assert code == 0, err
    assert "job horizon of every transition (the default): 2 days" in out
    code, out, err = run(capsys, "--database-url", url, "horizon", "10m")
    assert code == 1 and "at least 15 minutes" in err
    now = datetime.now(UTC).replace(microsecond=0)
    with sqlite3.connect(path) as conn:
        for days in (1, 5, 6):
            end = (now + timedelta(days=days)).isoformat()
            conn.execute("INSERT INTO meetings (title, end_time) VALUES ('m', ?)", (end,))
    code, out, err = run(capsys, "--database-url", url, "list-jobs")
    assert code == 0, err
    assert "2 pending rows of meetings beyond the job horizon: no job yet" in out
    jobs = run_json(capsys, "--database-url", url, "list-jobs")
    assert sorted(j["job_id"] is None for j in jobs if j["key"]) == [False, True, True]
    shown = run_json(capsys, "--database-url", url, "horizon")
    assert shown[0]["transition"] == "meetings" and shown[0]["beyond_horizon"] == 2
    assert shown[0]["job_horizon"] == "2 days" and shown[0]["own"] is False
    backend = SqliteBackend(url)
    try:
        assert backend.health()["beyond_horizon"] == 2
    finally:
        backend.close()
