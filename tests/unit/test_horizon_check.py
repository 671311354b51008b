"""doctor's job horizon line (issue 25): what the horizon is and how many rows wait beyond it; a
warning with the measured cost past 100,000 jobs without one; never a failure."""

from __future__ import annotations

from scheduler_admin.backends.checks import MANY_JOBS, horizon_check


def test_without_a_horizon_and_few_jobs_it_says_so() -> None:
    name, ok, detail, _ = horizon_check({"job_horizon": None, "cron_jobs": 12, "jobs": 11})
    assert (name, ok) == ("job horizon", True)
    assert detail == "none: every pending row has its job (12 jobs)"


def test_past_100000_jobs_without_a_horizon_it_warns_with_the_measured_cost() -> None:
    _, ok, detail, _ = horizon_check({"job_horizon": None, "cron_jobs": MANY_JOBS + 1})
    assert ok is True  # a warning, not a failure: doctor's exit status is unchanged
    assert detail.startswith("warning: pg_cron holds 100,001 jobs and no job horizon is set")
    assert "26% of a core" in detail and "scheduler-admin horizon 6h" in detail
    # exactly 100,000 is not past it
    assert not horizon_check({"cron_jobs": MANY_JOBS})[2].startswith("warning")


def test_with_a_horizon_it_counts_the_rows_beyond_it() -> None:
    _, ok, detail, _ = horizon_check(
        {"job_horizon": "06:00:00", "cron_jobs": 500_000, "beyond_horizon": 3}
    )
    assert ok is True and detail == "06:00:00: 3 pending rows beyond it, without a job yet"


def test_a_database_before_the_horizon_reports_none() -> None:
    """health() of a schema before revision 0011 has no horizon keys: counted as none."""
    assert horizon_check({"jobs": 5})[2] == "none: every pending row has its job (5 jobs)"
