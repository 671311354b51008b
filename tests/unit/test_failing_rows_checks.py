"""doctor and the metrics on rows that cannot be completed and on a reconcile job that keeps
failing or being skipped (security issue 22, finding 3), read from a ``health()`` /
``metrics()`` result alone: the same Python on every backend. A key the database does not
report yet (a PostgreSQL schema before revision 0009) counts as 0."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler_admin.backends.checks import health_checks
from scheduler_admin.core import Check
from scheduler_admin.metrics import HELP, render_data

FAILING = "no rows failing to complete"
RECONCILE = "reconcile job runs"

HEALTH: dict[str, Any] = {
    "enabled": True,
    "reconcile_job": True,
    "upcoming_meetings": 1,
    "missing_jobs": 0,
    "orphan_jobs": 0,
    "overdue_meetings": 0,
    "failed_runs_24h": 0,
    "retried_runs_24h": 0,
}
ROW: dict[str, Any] = {
    "transition": "closing",
    "key": "42",
    "error": "bookings.ends_at (transition closing, a row in state active) is required",
    "attempts": 3,
    "retry_at": "2026-12-01T10:01:10+00:00",
    "last_failed_at": "2026-12-01T10:00:30+00:00",
}
METRICS: dict[str, Any] = {
    "backend": "postgres",
    "enabled": True,
    "upcoming_meetings": 0,
    "jobs": 0,
    "missing_jobs": 0,
    "orphan_jobs": 0,
    "overdue_meetings": 0,
    "completions": {},
    "lateness": {"buckets": [[0.5, 0]], "count": 0, "sum": 0},
    "failed_runs": 0,
    "retried_runs": 0,
    "webhooks": {
        "enabled": False,
        "delivered": 0,
        "failed": 0,
        "attempt_failures": 0,
        "backlog": 0,
        "oldest_pending_seconds": None,
    },
}
NEW_GAUGES = {
    "failing_rows": "scheduler_failing_rows",
    "reconcile_skipped_in_a_row": "scheduler_reconcile_skipped_in_a_row",
    "reconcile_failed_in_a_row": "scheduler_reconcile_failed_in_a_row",
}


def checks(**facts: Any) -> dict[str, Check]:
    return {c["name"]: c for c in health_checks({**HEALTH, **facts}, [])}


def test_a_health_result_without_the_new_keys_passes_both_checks() -> None:
    found = checks()
    assert found[FAILING]["ok"] and found[FAILING]["fix"] is None
    assert found[FAILING]["detail"] == "no row is failing to complete"
    assert found[RECONCILE]["ok"] and found[RECONCILE]["fix"] is None
    # explicit zeros and nulls read the same
    again = checks(
        failing_rows=0,
        failing_rows_detail=[],
        reconcile_skipped_in_a_row=None,
        reconcile_failed_in_a_row=0,
    )
    assert again[FAILING] == found[FAILING] and again[RECONCILE] == found[RECONCILE]


def test_a_failing_row_fails_the_check_naming_it_with_its_error_and_attempts() -> None:
    other = {**ROW, "transition": "meetings", "key": "m-1", "error": "locked", "attempts": 1}
    check = checks(failing_rows=2, failing_rows_detail=[ROW, other])[FAILING]
    assert not check["ok"]
    assert check["detail"].startswith("2 rows failing to complete: ")
    assert (
        "closing 42: bookings.ends_at (transition closing, a row in state active) is required "
        "(3 attempts, next try 2026-12-01T10:01:10+00:00)"
    ) in check["detail"]
    assert "meetings m-1: locked (1 attempt, next try" in check["detail"]
    fix = check["fix"] or ""
    for words in ("fix the row", "trigger", "constraint", "retried", "set its state"):
        assert words in fix, words


def test_more_failing_rows_than_the_detail_lists_says_how_many_more() -> None:
    check = checks(failing_rows=25, failing_rows_detail=[ROW] * 20)[FAILING]
    assert not check["ok"]
    assert check["detail"].startswith("25 rows failing to complete: ")
    assert check["detail"].endswith("; and 5 more")
    # a count without its detail (or the other way round) still fails and says the count
    bare = checks(failing_rows=1)[FAILING]
    assert not bare["ok"] and bare["detail"] == "1 row failing to complete"


@pytest.mark.parametrize(
    ("facts", "ok", "words"),
    [
        ({"reconcile_failed_in_a_row": 2}, True, "the last 2 runs failed"),
        ({"reconcile_failed_in_a_row": 3}, False, "the last 3 runs failed"),
        ({"reconcile_skipped_in_a_row": 3}, False, "the last 3 runs were skipped"),
        ({"reconcile_skipped_in_a_row": 1}, True, "the last run was skipped"),
        (
            {"reconcile_failed_in_a_row": 4, "reconcile_skipped_in_a_row": 5},
            False,
            "the last 4 runs failed; the last 5 runs were skipped",
        ),
    ],
)
def test_a_reconcile_failing_or_skipped_three_times_in_a_row_fails(
    facts: dict[str, Any], ok: bool, words: str
) -> None:
    check = checks(**facts)[RECONCILE]
    assert check["ok"] is ok
    assert words in check["detail"]
    if not ok:
        assert "scheduler-admin history" in (check["fix"] or "")


def gauges(data: dict[str, Any]) -> dict[str, float]:
    text = render_data(data).decode()
    return {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(text)
        if family.type == "gauge"
    }


def test_the_gauges_are_0_when_the_metrics_lack_their_keys() -> None:
    found = gauges(copy.deepcopy(METRICS))
    for name in NEW_GAUGES.values():
        assert found[name] == 0, name
        assert len(HELP[name]) > 20


def test_the_gauges_report_the_metrics_keys() -> None:
    data = {
        **copy.deepcopy(METRICS),
        "failing_rows": 7,
        "reconcile_skipped_in_a_row": 2,
        "reconcile_failed_in_a_row": 4,
    }
    found = gauges(data)
    assert {name: found[name] for name in NEW_GAUGES.values()} == {
        "scheduler_failing_rows": 7,
        "scheduler_reconcile_skipped_in_a_row": 2,
        "scheduler_reconcile_failed_in_a_row": 4,
    }
