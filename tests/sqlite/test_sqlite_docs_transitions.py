"""docs/transitions.md's "On SQLite" example, run as written in an empty directory:
``migrate``, the ``sqlite3`` statement creating ``memberships`` (run through Python's sqlite3),
then ``transitions add``. A membership written afterwards by any client gets its job, and
expires at its time."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_helpers import run
from docs_helpers import blocks, commands, section

PREFIX = "memberships-status-"


def test_the_docs_register_memberships_on_sqlite_and_they_expire(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the page's relative scheduler_jobs.db
    (script,) = blocks(section("docs/transitions.md", "On SQLite"), "sh")
    steps = commands(script, console=False)
    assert [step[0] for step in steps] == ["scheduler-admin", "sqlite3", "scheduler-admin"]
    for step in steps:
        if step[0] == "sqlite3":
            _program, path, sql = step
            with sqlite3.connect(path) as conn:
                conn.execute(sql)
        else:
            code, _out, err = run(capsys, *step[1:])
            assert code == 0, err
    url = steps[-1][1:3]
    assert url == ["--database-url", "sqlite:///scheduler_jobs.db"]

    conn = sqlite3.connect(tmp_path / "scheduler_jobs.db", isolation_level=None, timeout=10)
    try:
        # the application's write, from any client: its job is registered by the triggers
        expires_at = datetime.now(timezone.utc) + timedelta(seconds=1.5)
        key = conn.execute(
            "insert into memberships (user_id, expires_at) values ('u1', ?) returning id",
            (expires_at.isoformat(timespec="milliseconds"),),
        ).fetchone()[0]
        assert conn.execute(
            "select command from cron_job where jobname = ?", (f"{PREFIX}{key}",)
        ).fetchone() == (f"complete_transition('memberships', '{key}')",)

        # once its time has passed, the waker's call expires it and removes its job
        while datetime.now(timezone.utc) <= expires_at:
            time.sleep(0.05)
        code, _out, err = run(capsys, *url, "waker", "--once", "--transition", "memberships")
        assert code == 0, err
        assert conn.execute("select status from memberships where id = ?", (key,)).fetchone() == (
            "expired",
        )
        assert conn.execute(
            "select count(*) from cron_job where jobname like ?", (PREFIX + "%",)
        ).fetchone() == (0,)
    finally:
        conn.close()
