"""The checks of ``doctor`` that ``scheduler.health()`` answers, shared by the backends that
reach it (direct PostgreSQL and the Supabase REST API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler_admin.backends.base import Check, Run, plural

# time zone names that mean UTC to PostgreSQL, lower-cased
UTC_NAMES = frozenset(
    {"gmt", "utc", "etc/utc", "etc/gmt", "z", "zulu", "universal", "etc/universal"}
)


def check(name: str, ok: bool, detail: str, fix: str) -> Check:
    return Check(name=name, ok=ok, detail=detail, fix=None if ok else fix)


def health_checks(
    health: dict[str, Any],
    failures: list[Run],
    *,
    details: Mapping[str, str] | None = None,
    fixes: Mapping[str, str] | None = None,
) -> list[Check]:
    """The checks of ``doctor`` that a ``health()`` result answers, on every backend.

    ``details`` and ``fixes``, keyed by check name, replace the default wording where a backend
    knows more (SQLite: wrong jobs, the emulated worker) or fixes it another way."""
    details = details or {}
    fixes = fixes or {}
    recent = [f"{r['job_name']}: {r['return_message']}" for r in failures]
    failed_runs = int(health["failed_runs_24h"])
    # a failed run whose work a later run did (its meeting completed, or the job's next run
    # succeeded): the retry the design relies on, reported but not a problem
    retried = int(health.get("retried_runs_24h") or 0)
    failed = plural(failed_runs, "failed run")
    if failed_runs:
        failed += f", {retried} retried by a later run"
    if recent and failed_runs:
        failed += f" (latest: {'; '.join(recent)})"
    rows = [
        (
            "scheduler enabled",
            bool(health["enabled"]),
            "enabled" if health["enabled"] else "paused",
            "Run `scheduler-admin resume`.",
        ),
        (
            "reconcile job",
            bool(health["reconcile_job"]),
            "meeting-status-reconcile scheduled every minute"
            if health["reconcile_job"]
            else "meeting-status-reconcile missing",
            "Run `scheduler-admin migrate` (re-applies the schema and the job).",
        ),
        (
            "every upcoming meeting has a job",
            health["missing_jobs"] == 0,
            f"{health['upcoming_meetings']} upcoming, {health['missing_jobs']} without a job",
            "Run `scheduler-admin recover`.",
        ),
        (
            "no orphan jobs",
            health["orphan_jobs"] == 0,
            f"{plural(health['orphan_jobs'], 'job')} without an upcoming meeting",
            "Run `scheduler-admin recover`.",
        ),
        (
            "no overdue meetings",
            health["overdue_meetings"] == 0,
            f"{plural(health['overdue_meetings'], 'upcoming meeting')} ended over 2 minutes ago",
            "Run `scheduler-admin recover`; check that the reconcile job runs "
            "(`scheduler-admin history`).",
        ),
        (
            "failed runs retried (24 h)",
            failed_runs == retried,
            failed,
            "See `scheduler-admin history --failed`; with pg_cron connecting over libpq, the job "
            "owner needs to be able to log in to localhost (or set cron.use_background_workers "
            "= on).",
        ),
    ]
    sweep = health.get("sweep")
    if isinstance(sweep, dict):
        rows.append(sweep_check(sweep, health.get("pg_cron_version")))
    return [
        check(name, ok, details.get(name, detail), fixes.get(name, fix))
        for name, ok, detail, fix in rows
    ]


def sweep_check(sweep: dict[str, Any], version: object) -> tuple[str, bool, str, str]:
    """The seconds sweep (PostgreSQL): there where pg_cron takes seconds and it is on."""
    name = "seconds sweep"
    if not sweep.get("supported"):
        return (
            name,
            True,
            f"absent: pg_cron {version or '?'} has no schedules in seconds (1.5 and later do), "
            "so meetings become done at the start of the minute after their end",
            "",
        )
    seconds = int(sweep.get("seconds") or 0)
    if seconds == 0:
        return (name, True, "turned off (scheduler.settings.sweep_seconds = 0)", "")
    return (
        name,
        bool(sweep.get("job")),
        f"meeting-status-sweep every {plural(seconds, 'second')}"
        if sweep.get("job")
        else "meeting-status-sweep missing",
        "Run `scheduler-admin reconcile` (or wait a minute for the reconcile job), or "
        "`scheduler-admin migrate`.",
    )


def security_checks(security: dict[str, Any] | None) -> list[Check]:
    """Who runs what (``scheduler.security_report()``): nobody may gain rights through the
    triggers or the jobs, which run as the owner of ``public.meetings``."""
    if security is None:
        return [
            check(
                "security model",
                False,
                "this database predates the security revision",
                "Run `scheduler-admin migrate`.",
            )
        ]
    owner = security["owner"]
    checks = [
        check(
            "jobs and functions run as the owner of meetings",
            not security["functions_not_owned"] and not security["jobs_not_owned"],
            f"everything of ours belongs to {owner}"
            if not security["functions_not_owned"] and not security["jobs_not_owned"]
            else f"{len(security['functions_not_owned'])} functions and "
            f"{security['jobs_not_owned']} jobs of ours belong to a role other than {owner}",
            f"Run `scheduler-admin migrate` as {owner} or as a superuser: it gives them to "
            f"{owner}.",
        ),
        check(
            "only the owner may add triggers to meetings",
            not security["trigger_grantees"],
            "no other role holds TRIGGER on public.meetings"
            if not security["trigger_grantees"]
            else "TRIGGER on public.meetings held by " + ", ".join(security["trigger_grantees"]),
            "A trigger runs with the owner's rights whenever a job completes a meeting: "
            + " ".join(
                f"revoke trigger on public.meetings from {role};"
                for role in security["trigger_grantees"]
            ),
        ),
    ]
    foreign = [t for t in security["other_triggers"] if t["foreign"]]
    others = ", ".join(
        f"{t['trigger']} ({t['function']}, owned by {t['function_owner']})"
        for t in security["other_triggers"]
    )
    checks.append(
        check(
            "other triggers on meetings",
            not foreign,
            (f"run as {owner} when a job completes a meeting: {others}" if others else "none"),
            "These trigger functions were written by roles that are neither the owner nor a "
            f"superuser and run with {owner}'s rights: drop the triggers or make {owner} own "
            "the functions after reviewing them ("
            + ", ".join(f"{t['trigger']}: {t['function']}" for t in foreign)
            + ").",
        )
    )
    api_writers = security["api_writers"]
    writers = f"; {', '.join(api_writers)} may write meetings" if api_writers else ""
    checks.append(
        check(
            "row-level security on meetings",
            bool(security["row_security"]) or not api_writers,
            "enabled" if security["row_security"] else "disabled" + writers,
            "Every write by these roles schedules a pg_cron job: "
            "alter table public.meetings enable row level security; then add policies for the "
            "roles that should write (README, Security model).",
        )
    )
    timezone = security["cron_timezone"]
    if not security["cron_timezone_readable"]:
        detail, ok = "cron.timezone not checked (this role cannot read pg_cron's settings)", True
    elif timezone is None:
        detail, ok = "this pg_cron has no cron.timezone: schedules are in GMT", True
    else:
        ok = timezone.strip().lower() in UTC_NAMES
        detail = f"cron.timezone = {timezone}"
    checks.append(
        check(
            "pg_cron schedules in UTC",
            ok,
            detail,
            "Job schedules are UTC minutes: set cron.timezone = 'GMT' in postgresql.conf and "
            "restart PostgreSQL, or meetings are completed hours late.",
        )
    )
    return checks
