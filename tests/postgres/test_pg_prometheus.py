"""``scheduler-admin metrics`` on PostgreSQL: the text format, parsed back with
prometheus_client's parser, moves with the completions the database records and matches
``--json metrics`` (scheduler.metrics())."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_helpers import run, run_json
from pg_helpers import Conn, Server, poll, reconcile_job_inactive
from prometheus_client.parser import text_string_to_metric_families

from scheduler_admin.core import PATHS

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
LATENESS = "scheduler_completion_lateness_seconds"


@pytest.fixture(autouse=True)
def no_tick(db: Conn) -> Iterator[None]:
    with reconcile_job_inactive(db):
        yield


def scrape(capsys: pytest.CaptureFixture[str], url: str) -> Samples:
    code, out, err = run(capsys, "--database-url", url, "metrics")
    assert code == 0, err
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out)
        for s in family.samples
    }


def completions(samples: Samples, path: str) -> float:
    return samples[("scheduler_completions_total", (("path", path),))]


def test_cli_metrics_follow_the_database(
    db: Conn, migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    before = scrape(capsys, migrated.url)
    assert before[("scheduler_up", ())] == 1
    # write: two meetings inserted with an end time already past
    db.execute(
        "insert into meetings (title, end_time) "
        "select 'late', now() - interval '1 minute' from generate_series(1, 2)"
    )
    # waker: one that ends in a moment, its job off, completed by scheduler.wake()
    end = db.execute(
        "insert into meetings (title, end_time) values ('soon', clock_timestamp() + "
        "interval '200 milliseconds') returning end_time"
    ).fetchone()[0]  # type: ignore[index]
    db.execute(
        "update cron.job set active = false where jobname ~ '^meeting-status-[0-9a-f-]{36}$'"
    )
    assert poll(
        lambda: db.execute("select clock_timestamp() > %s", (end,)).fetchone()[0],  # type: ignore[index]
        timeout=5,
        interval=0.05,
    )
    assert db.execute("select scheduler.wake()").fetchone()[0]["completed"] == 1  # type: ignore[index]
    # an upcoming one far ahead
    db.execute("insert into meetings (title, end_time) values ('later', now() + interval '3 days')")

    after = scrape(capsys, migrated.url)
    raw = run_json(capsys, "--database-url", migrated.url, "metrics")
    deltas = {p: completions(after, p) - completions(before, p) for p in PATHS}
    assert deltas == {p: {"write": 2, "waker": 1}.get(p, 0) for p in PATHS}
    assert after[(LATENESS + "_count", ())] - before[(LATENESS + "_count", ())] == 3
    # the text format says what scheduler.metrics() says
    for path in PATHS:
        assert completions(after, path) == raw["completions"][path]
    assert after[(LATENESS + "_count", ())] == raw["lateness"]["count"]
    assert after[(LATENESS + "_bucket", (("le", "+Inf"),))] == raw["lateness"]["count"]
    for le, count in raw["lateness"]["buckets"]:
        assert after[(LATENESS + "_bucket", (("le", repr(float(le))),))] == count
    assert after[("scheduler_upcoming_meetings", ())] == raw["upcoming_meetings"] >= 1
    assert after[("scheduler_jobs", ())] == raw["jobs"]
    assert after[("scheduler_webhook_backlog", ())] == raw["webhooks"]["backlog"]
