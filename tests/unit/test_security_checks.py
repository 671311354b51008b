"""doctor's reading of scheduler.security_report(): the cron.timezone rule, case by case. On real
servers, tests/postgres/test_doctor_cron_timezone.py: the local lane's pg_cron 1.4 has no such
setting; the container lane's 1.6 reads GMT by default, and a server of that lane started with
another cron.timezone fails the check."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_admin.backends.checks import security_checks

SECURE: dict[str, Any] = {
    "owner": "app",
    "functions_not_owned": [],
    "jobs_not_owned": 0,
    "trigger_grantees": [],
    "other_triggers": [],
    "row_security": True,
    "api_writers": [],
    "cron_timezone": None,
    "cron_timezone_readable": True,
}


def timezone_check(**facts: Any) -> dict[str, Any]:
    (check,) = [
        c for c in security_checks({**SECURE, **facts}) if c["name"] == "pg_cron schedules in UTC"
    ]
    return dict(check)


@pytest.mark.parametrize("zone", ["GMT", "UTC", "Etc/UTC", "utc"])
def test_a_utc_cron_timezone_passes(zone: str) -> None:
    assert timezone_check(cron_timezone=zone)["ok"]


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "EST"])
def test_another_cron_timezone_fails_with_the_fix(zone: str) -> None:
    check = timezone_check(cron_timezone=zone)
    assert not check["ok"]
    assert zone in check["detail"]
    assert "cron.timezone = 'GMT'" in check["fix"]


def test_pg_cron_without_cron_timezone_or_an_unreadable_one_passes_and_says_so() -> None:
    assert timezone_check(cron_timezone=None)["detail"].startswith("this pg_cron has no")
    unread = timezone_check(cron_timezone=None, cron_timezone_readable=False)
    assert unread["ok"] and "not checked" in unread["detail"]


def test_a_database_without_the_security_report_asks_for_the_migration() -> None:
    (check,) = security_checks(None)
    assert not check["ok"] and check["fix"] == "Run `scheduler-admin migrate`."


def test_a_secure_report_passes_every_check() -> None:
    assert all(c["ok"] for c in security_checks(SECURE))
