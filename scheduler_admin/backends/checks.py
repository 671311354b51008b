"""The checks of ``doctor`` that ``scheduler.health()`` answers, shared by the backends that
reach it (direct PostgreSQL and the Supabase REST API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler_admin.config import Settings
from scheduler_admin.core import Check, Run, plural

# time zone names that mean UTC to PostgreSQL, lower-cased
UTC_NAMES = frozenset(
    {"gmt", "utc", "etc/utc", "etc/gmt", "z", "zulu", "universal", "etc/universal"}
)


def check(name: str, ok: bool, detail: str, fix: str) -> Check:
    return Check(name=name, ok=ok, detail=detail, fix=None if ok else fix)


def configuration_check(settings: Settings) -> Check:
    """``doctor``'s first line: the database in use and which setting gave it, with the set
    settings it ignored and why (a leftover ``DATABASE_URL`` before ``ENVIRONMENT=prod`` and
    ``SUPABASE_DB_URL``). Information, never a failure: the order is documented."""
    return check("configuration", True, f"{settings.display}: {settings.origin}", "")


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
    rows.append(failing_rows_check(health))
    rows.append(reconcile_runs_check(health))
    rows.append(horizon_check(health))
    sweep = health.get("sweep")
    if isinstance(sweep, dict):
        rows.append(sweep_check(sweep, health.get("pg_cron_version")))
    return [
        check(name, ok, details.get(name, detail), fixes.get(name, fix))
        for name, ok, detail, fix in rows
    ]


# pg_cron's launcher walks every job it holds at each wake-up (every second on pg_cron 1.5+):
# past this many jobs without a job horizon, doctor warns (benchmarks/RESULTS.md, "Scale")
MANY_JOBS = 100_000


def horizon_check(health: Mapping[str, Any]) -> tuple[str, bool, str, str]:
    """The job horizon (revision 0011): what it is and how many pending rows wait beyond it;
    a warning (never a failure) when pg_cron holds over 100,000 jobs without one."""
    horizon = health.get("job_horizon")
    jobs = _count(health, "cron_jobs") or _count(health, "jobs")
    beyond = _count(health, "beyond_horizon")
    if horizon:
        detail = f"{horizon}: {plural(beyond, 'pending row')} beyond it, without a job yet"
    elif jobs > MANY_JOBS:
        detail = (
            f"warning: pg_cron holds {jobs:,} jobs and no job horizon is set; its launcher walks "
            "every job at each wake-up: measured, about 26% of a core idle per 100,000 jobs on "
            "pg_cron 1.6 with the seconds sweep (58% at 1,000,000), 3.5% on 1.4 (docs: Scaling). "
            "Set one, e.g. `scheduler-admin horizon 6h` (2% of a core at a million rows)"
        )
    else:
        detail = f"none: every pending row has its job ({plural(jobs, 'job')})"
    return ("job horizon", True, detail, "")


def _count(health: Mapping[str, Any], key: str) -> int:
    """A count of ``health()``; 0 when the database does not report it (a schema before the
    revision that added it)."""
    return int(health.get(key) or 0)


# characters of a failing row's error shown by doctor (the database keeps up to 2000)
FAILING_ERROR_SHOWN = 300
# this many reconcile runs failed, or skipped, in a row fail doctor's check
RECONCILE_IN_A_ROW = 3


def failing_rows_check(health: Mapping[str, Any]) -> tuple[str, bool, str, str]:
    """Rows whose completion failed (health's ``failing_rows``, of every transition, and
    ``failing_rows_detail``, the most recent ones): each is left out until its retry time, so
    a row that keeps failing is never completed until someone fixes it (revision 0009)."""
    count = _count(health, "failing_rows")
    if count == 0:
        return ("no rows failing to complete", True, "no row is failing to complete", "")
    rows = [r for r in health.get("failing_rows_detail") or [] if isinstance(r, Mapping)]
    named = []
    for row in rows:
        error = str(row.get("error") or "")
        if len(error) > FAILING_ERROR_SHOWN:
            error = error[: FAILING_ERROR_SHOWN - 1] + "…"
        attempts = int(row.get("attempts") or 0)
        named.append(
            f"{row.get('transition')} {row.get('key')}: {error} "
            f"({plural(attempts, 'attempt')}, next try {row.get('retry_at')})"
        )
    detail = f"{plural(count, 'row')} failing to complete"
    if named:
        detail += ": " + "; ".join(named)
        if count > len(named):
            detail += f"; and {count - len(named)} more"
    return (
        "no rows failing to complete",
        False,
        detail,
        "A constraint or a trigger (the application's, or another transition's on the same "
        "table) rejects the completion of these rows; every other row is completed. Either fix "
        "the row (e.g. set the column the trigger requires) or the trigger or constraint that "
        "rejects it: it is retried with back-off (10 s, doubling, at most an hour) and "
        "forgotten once it completes; or set its state yourself (its entry goes at the next "
        "reconcile).",
    )


def reconcile_runs_check(health: Mapping[str, Any]) -> tuple[str, bool, str, str]:
    """The reconcile job's last runs that failed, or were skipped (another recovery held the
    lock), in a row (health's ``reconcile_failed_in_a_row`` and ``reconcile_skipped_in_a_row``):
    while it does not run, overdue rows are not completed, missing jobs not registered."""
    failed = _count(health, "reconcile_failed_in_a_row")
    skipped = _count(health, "reconcile_skipped_in_a_row")

    def last(count: int, what: str) -> str:
        return f"the last run {what}" if count == 1 else f"the last {count} runs {what}"

    parts = []
    if failed:
        parts.append(last(failed, "failed"))
    if skipped:
        parts.append(last(skipped, "was skipped" if skipped == 1 else "were skipped"))
    return (
        "reconcile job runs",
        failed < RECONCILE_IN_A_ROW and skipped < RECONCILE_IN_A_ROW,
        "; ".join(parts) if parts else "no failed or skipped run in a row",
        "See why in `scheduler-admin history --failed` (meeting-status-reconcile); a run is "
        "skipped while another recovery holds the lock: a recover, resume or migration that "
        "lasts, or a session that holds it. Until the reconcile job runs again, overdue rows "
        "are not completed and missing jobs are not registered: `scheduler-admin recover` does "
        "it once.",
    )


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
            "roles that should write (docs/security.md).",
        )
    )
    # partitions, children and registered tables; meetings' own TRIGGER grants and foreign
    # invoker triggers are the two checks above
    covered = {t["trigger"] for t in foreign}
    checks.extend(table_checks(security.get("tables") or [], covered))
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


MEETINGS = "public.meetings"


def _revoke(grant: Mapping[str, str]) -> str:
    grantee = grant["grantee"]
    return f"revoke {grant['privilege'].lower()} on {grant['relation']} from {grantee};"


def table_checks(
    tables: list[dict[str, Any]], meetings_triggers_checked: set[str] | frozenset[str] = frozenset()
) -> list[Check]:
    """The tables the owner's code writes (meetings and every registered table), with their
    partitions and children (``scheduler.table_safety()``, revision 0009): the scheduler leaves
    alone the rows of a table another role owns or has a trigger on, takes TRIGGER, TRUNCATE
    and REFERENCES back every minute, and a partition that the API roles may read with
    row-level security off shows the rows its parent's policies hide."""
    not_owned = [t for table in tables for t in table.get("not_owned", [])]
    foreign = [
        t
        for table in tables
        for t in table.get("foreign_triggers", [])
        if not (t["relation"] == MEETINGS and t["trigger"] in meetings_triggers_checked)
    ]
    grants = [
        g
        for table in tables
        for g in table.get("foreign_grants", [])
        if not (g["relation"] == MEETINGS and g["privilege"] == "TRIGGER")
    ]
    readable = [r for table in tables for r in table.get("readable_without_rls", [])]
    names = ", ".join(table["table"] for table in tables) or "none"
    return [
        check(
            "no other role's trigger on a table we write, or a partition of it",
            not foreign and not not_owned,
            f"checked {names}"
            if not foreign and not not_owned
            else "; ".join(
                [
                    f"{t['trigger']} on {t['relation']} ({t['function']}, owned by "
                    f"{t['function_owner']})"
                    for t in foreign
                ]
                + [f"{t['relation']} is owned by {t['owner']}" for t in not_owned]
            )
            + ": the scheduler leaves their rows pending",
            "A trigger written by another role would run with the owner's rights (or see the "
            "rows it updates) whenever a job completes a row: "
            + " ".join(f"drop trigger {t['trigger']} on {t['relation']};" for t in foreign)
            + " ".join(
                f" alter table {t['relation']} owner to <the owner of the parent>;"
                for t in not_owned
            ),
        ),
        check(
            "only the owner may trigger, truncate or reference them",
            not grants,
            "no other role holds TRIGGER, TRUNCATE or REFERENCES"
            if not grants
            else ", ".join(
                f"{g['privilege']} on {g['relation']} held by {g['grantee']}" for g in grants
            ),
            "The reconcile job takes them back within a minute; now: "
            + " ".join(_revoke(g) for g in grants),
        ),
        check(
            "no partition readable by the API roles without row-level security",
            not readable,
            "none"
            if not readable
            else ", ".join(f"{r['relation']} readable by {r['grantee']}" for r in readable),
            "Reading a partition directly skips its parent's policies: "
            + " ".join(f"alter table {r['relation']} enable row level security;" for r in readable)
            + " (or revoke select on it from those roles).",
        ),
    ]
