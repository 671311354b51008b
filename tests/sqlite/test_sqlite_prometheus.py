"""``scheduler-admin metrics`` on a real SQLite store: the text format, parsed back with
prometheus_client's parser, says what the store holds (completions by path, lateness, upcoming
meetings and jobs) and matches ``--json metrics``."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run, run_json
from prometheus_client.parser import text_string_to_metric_families
from sqlite_helpers import future, insert

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import PATHS

UTC = timezone.utc


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_until(when: datetime) -> None:
    while (left := (when - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(left, 0.05))


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT", "SCHEDULER_JOBSTORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_cli_metrics_match_the_store(
    db_path: Path, conn: sqlite3.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{db_path}"
    backend = SqliteBackend(url)  # the real clock: the triggers use SQLite's own
    try:
        # write: inserted with an end time already past (the BEFORE trigger completes them)
        for _ in range(2):
            insert(conn, datetime.now(UTC) - timedelta(minutes=1))
        # upcoming, with their jobs
        for minutes in (60, 90, 120):
            insert(conn, future(minutes))
        # waker: one that ends in a moment, completed by wake()
        soon = datetime.now(UTC) + timedelta(seconds=1)
        insert(conn, soon)
        wait_until(soon + timedelta(milliseconds=50))
        assert backend.wake()["completed"] == 1
        # recover: one left overdue (nothing woke it), completed by recover()
        soon = datetime.now(UTC) + timedelta(seconds=1)
        insert(conn, soon)
        wait_until(soon + timedelta(milliseconds=50))
        assert backend.recover()["overdue_completed"] == 1
    finally:
        backend.close()

    code, out, err = run(capsys, "--database-url", url, "metrics")
    assert code == 0, err
    got = samples(out)
    raw: dict[str, Any] = run_json(capsys, "--database-url", url, "metrics")

    expected = {"write": 2, "waker": 1, "recover": 1}
    for path in PATHS:
        key = ("scheduler_completions_total", (("path", path),))
        assert got[key] == expected.get(path, 0) == raw["completions"][path], path
    assert got[("scheduler_up", ())] == 1
    assert got[("scheduler_upcoming_meetings", ())] == 3 == raw["upcoming_meetings"]
    assert got[("scheduler_jobs", ())] == 3 == raw["jobs"]
    assert got[("scheduler_missing_jobs", ())] == 0
    assert got[("scheduler_overdue_meetings", ())] == 0
    assert got[("scheduler_enabled", ())] == 1

    name = "scheduler_completion_lateness_seconds"
    assert got[(name + "_count", ())] == 4 == raw["lateness"]["count"]
    assert got[(name + "_bucket", (("le", "+Inf"),))] == 4
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (n, labels), value in got.items()
        if n == name + "_bucket"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    # the two written a minute late are in no bucket below 60 s; the other two within 2 s
    assert dict(buckets)[2.0] == 2 and dict(buckets)[3600.0] == 4
    assert got[(name + "_sum", ())] == pytest.approx(raw["lateness"]["sum"])
    assert raw["lateness"]["sum"] > 120
