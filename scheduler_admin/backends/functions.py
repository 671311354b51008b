"""The Backend protocol on any database that runs our SQL functions, written once over a
:class:`~scheduler_admin.backends.transport.Transport` (psycopg or PostgREST)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, cast

from scheduler_admin.backends.checks import health_checks, security_checks
from scheduler_admin.backends.transport import (
    Column,
    SqlTransport,
    Transport,
    normalise_times,
    parse_time,
)
from scheduler_admin.core import (
    BUILTIN,
    Check,
    Event,
    Horizon,
    Job,
    Outcome,
    Reconciled,
    Recovered,
    Run,
    Transition,
    Wake,
    interval_text,
    parse_horizon,
    plural,
    recover_summary,
    require_aware,
    require_path,
)
from scheduler_admin.exceptions import InvalidInput, MeetingNotFound

log = logging.getLogger(__name__)

# The columns of scheduler.list_jobs() and scheduler.history(), in the order of the TypedDicts.
JOB_COLUMNS: tuple[Column, ...] = (
    ("meeting_id", "text"),
    ("job_id", "value"),
    ("job_name", "text"),
    ("schedule", "text"),
    ("next_run", "time"),
    ("end_time", "time"),
    ("meeting_status", "text"),
    ("active", "value"),
    ("transition", "text"),
    ("key", "text"),
)
# scheduler.deferred_jobs(): the pending rows beyond the job horizon
DEFERRED_COLUMNS: tuple[Column, ...] = (
    ("transition", "text"),
    ("key", "text"),
    ("job_name", "text"),
    ("schedule", "text"),
    ("next_run", "time"),
    ("end_time", "time"),
    ("state", "text"),
    ("registered_at", "time"),
)
HORIZON_COLUMNS: tuple[Column, ...] = (
    ("transition", "text"),
    ("job_horizon", "text"),
    ("horizon_seconds", "value"),
    ("own", "value"),
    ("beyond_horizon", "value"),
    ("next_beyond", "time"),
    ("next_registration", "time"),
)
RUN_COLUMNS: tuple[Column, ...] = (
    ("run_id", "value"),
    ("job_id", "value"),
    ("job_name", "text"),
    ("meeting_id", "text"),
    ("status", "text"),
    ("return_message", "text"),
    ("start_time", "time"),
    ("end_time", "time"),
    ("transition", "text"),
    ("key", "text"),
)
EVENT_COLUMNS: tuple[Column, ...] = (
    ("event_id", "value"),
    ("event_key", "text"),
    ("meeting_id", "text"),
    ("end_time", "time"),
    ("completed_at", "time"),
    ("lateness_seconds", "value"),
    ("path", "text"),
    ("delivery", "text"),
    ("attempts", "value"),
    ("last_error", "text"),
    ("transition", "text"),
    ("key", "text"),
)
TRANSITION_COLUMNS: tuple[Column, ...] = (
    ("name", "text"),
    ("table_name", "text"),
    ("key_column", "text"),
    ("time_column", "text"),
    ("state_column", "text"),
    ("from_states", "value"),
    ("to_state", "text"),
    ("job_prefix", "text"),
    ("builtin", "value"),
    ("pending_rows", "value"),
    ("jobs", "value"),
    ("paused", "value"),
)

# What only a direct connection can read: pg_cron's settings (cron.database_name is readable by
# superusers and pg_read_all_settings only, absent from pg_settings otherwise, as on Supabase for
# the postgres role) and the catalog.
FACTS = """
select (select extversion from pg_extension where extname = 'pg_cron') as version,
       (select setting from pg_settings where name = 'cron.database_name') as cron_db,
       (select rolsuper from pg_roles where rolname = current_user)
       or pg_has_role(current_user, 'pg_read_all_settings', 'member') as can_read,
       current_database() as db,
       to_regnamespace('scheduler') is not null as migrated,
       to_regclass('public.meetings') is not null as has_meetings,
       (select count(*) from pg_trigger where tgrelid = to_regclass('public.meetings')
        and tgname like 'scheduler_meetings_%' and tgenabled <> 'D') as triggers
"""

OVER_REST = Check(
    name="checked through the REST API",
    ok=True,
    detail="only scheduler.health() and scheduler.history() are available over RPC: "
    "pg_cron's preload and database settings and the triggers on meetings are not checked",
    fix=None,
)
FULL_CHECK = Check(
    name="full check",
    ok=True,
    detail="for the pg_cron settings and the triggers, run doctor with SUPABASE_DB_URL set to the "
    "direct connection",
    fix=None,
)


def parse_meeting_id(meeting_id: str) -> str:
    """The meeting id in the canonical form of a UUID. Any other string is no meeting's id."""
    try:
        return str(uuid.UUID(str(meeting_id)))
    except ValueError:
        raise MeetingNotFound(meeting_id, hint="Meeting ids are UUIDs.") from None


class FunctionsBackend:
    """Admin operations through the SQL functions in schema ``scheduler``."""

    name = "functions"

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @property
    def target(self) -> str:
        """The database, for messages (passwords and keys masked)."""
        return self.transport.target

    def close(self) -> None:
        self.transport.close()

    # -- operations ---------------------------------------------------------------------------

    def list_jobs(self, *, transition: str | None = None) -> list[Job]:
        names = [name for name, _ in JOB_COLUMNS]
        rows = self.transport.rows("list_jobs", _of(transition), JOB_COLUMNS)
        log.debug("listed %s on %s", plural(len(rows), "job"), self.target)
        jobs = [
            cast(Job, {**dict(zip(names, row, strict=True)), "registered_at": None}) for row in rows
        ]
        # the pending rows beyond the job horizon, after the jobs: the job each will get
        deferred = self.transport.rows("deferred_jobs", _of(transition), DEFERRED_COLUMNS)
        for row in deferred:
            d = dict(zip([name for name, _ in DEFERRED_COLUMNS], row, strict=True))
            jobs.append(
                Job(
                    meeting_id=d["key"] if d["transition"] == BUILTIN else None,
                    job_id=None,
                    job_name=d["job_name"],
                    schedule=d["schedule"],
                    next_run=d["next_run"],
                    end_time=d["end_time"],
                    meeting_status=d["state"],
                    active=None,
                    transition=d["transition"],
                    key=d["key"],
                    registered_at=d["registered_at"],
                )
            )
        return jobs

    def horizons(self) -> list[Horizon]:
        names = [name for name, _ in HORIZON_COLUMNS]
        rows = self.transport.rows("horizons", None, HORIZON_COLUMNS)
        return [cast(Horizon, dict(zip(names, row, strict=True))) for row in rows]

    def set_job_horizon(self, horizon: str | None, *, transition: str | None = None) -> Horizon:
        """The default job horizon (no transition) or one transition's own (None: none, or for
        a transition the default); parsed as :func:`~scheduler_admin.core.parse_horizon`."""
        value = interval_text(parse_horizon(horizon))
        result = self.transport.call(
            "set_job_horizon", {"p_horizon": value, "p_transition": transition}
        )
        log.info(
            "job horizon of %s set to %s on %s",
            transition or "every transition (the default)",
            value or "none",
            self.target,
        )
        horizon_row = cast(dict[str, Any], result)
        for key in ("next_beyond", "next_registration"):
            horizon_row[key] = parse_time(horizon_row.get(key))
        return cast(Horizon, horizon_row)

    def history(
        self, *, failed_only: bool = False, limit: int = 50, transition: str | None = None
    ) -> list[Run]:
        if limit < 1:
            raise InvalidInput(f"--limit must be at least 1, got {limit}")
        names = [name for name, _ in RUN_COLUMNS]
        params = {"p_failed_only": failed_only, "p_limit": limit, **_of(transition)}
        rows = self.transport.rows("history", params, RUN_COLUMNS)
        return [cast(Run, dict(zip(names, row, strict=True))) for row in rows]

    def recover(self, *, dry_run: bool = False, transition: str | None = None) -> Recovered:
        params = {"p_dry_run": dry_run, **_of(transition)}
        report = cast(Recovered, self.transport.call("recover", params))
        # debug: the caller reports the outcome (the CLI prints it, the service logs it once)
        log.debug(
            "recover%s on %s: %s",
            " (dry run)" if dry_run else "",
            self.target,
            recover_summary(report),
        )
        return report

    def reconcile(self, *, transition: str | None = None) -> Reconciled:
        report = cast(Reconciled, self.transport.call("reconcile", _of(transition) or None))
        if "paused" in report:
            log.info("reconcile on %s: the scheduler is paused, nothing done", self.target)
        elif "skipped" in report:
            log.info("reconcile on %s: skipped (%s)", self.target, report.get("skipped"))
        else:
            log.info("reconcile on %s: %s", self.target, recover_summary(report))
        return report

    def schedule(self, meeting_id: str, end_time: datetime) -> dict[str, Any]:
        require_aware(end_time)
        params = {"p_meeting_id": parse_meeting_id(meeting_id), "p_end_time": end_time.isoformat()}
        result = normalise_times(
            cast(dict[str, Any], self.transport.call("schedule_meeting", params))
        )
        log.info("scheduled meeting %s to end at %s", meeting_id, end_time.isoformat())
        return result

    def cancel(self, meeting_id: str) -> dict[str, Any]:
        params = {"p_meeting_id": parse_meeting_id(meeting_id)}
        result = cast(dict[str, Any], self.transport.call("cancel_meeting", params))
        removed = result.get("jobs_removed")
        log.info(
            "cancelled meeting %s (%s removed)",
            meeting_id,
            plural(removed, "job") if isinstance(removed, int) else "no job",
        )
        return result

    def pause(self, *, transition: str | None = None) -> dict[str, Any]:
        result = cast(dict[str, Any], self.transport.call("pause", _of(transition) or None))
        log.warning(
            "%s paused on %s: no job will be registered until resume",
            "scheduler" if transition is None else f"transition {transition}",
            self.target,
        )
        return result

    def resume(self, *, transition: str | None = None) -> Recovered:
        report = cast(Recovered, self.transport.call("resume", _of(transition) or None))
        log.info(
            "%s resumed on %s: %s",
            "scheduler" if transition is None else f"transition {transition}",
            self.target,
            recover_summary(report),
        )
        return report

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.transport.call("health"))

    def wake(self, *, transition: str | None = None) -> Wake:
        """``scheduler.wake()``: complete what is due, then the next end time and the
        database's clock (the waker's one call, :mod:`scheduler_admin.waker`)."""
        result = cast(dict[str, Any], self.transport.call("wake", _of(transition) or None))
        now = parse_time(result.get("now"))
        assert now is not None, "scheduler.wake() returned no time"
        return Wake(
            completed=int(result.get("completed") or 0),
            next_end_time=parse_time(result.get("next_end_time")),
            now=now,
            paused=bool(result.get("paused")),
        )

    def events(
        self, *, limit: int = 50, path: str | None = None, transition: str | None = None
    ) -> list[Event]:
        if limit < 1:
            raise InvalidInput(f"--limit must be at least 1, got {limit}")
        params = {"p_limit": limit, "p_path": require_path(path), **_of(transition)}
        return self._events("events", params)

    def set_webhooks(self, enabled: bool) -> dict[str, Any]:
        return cast(dict[str, Any], self.transport.call("set_webhooks", {"p_enabled": enabled}))

    def claim_events(self, *, limit: int, lease_seconds: float) -> list[Event]:
        params = {"p_limit": limit, "p_lease_seconds": lease_seconds}
        return self._events("claim_events", params)

    def record_attempt(
        self,
        event_id: int,
        *,
        outcome: Outcome,
        status_code: int | None = None,
        error: str | None = None,
        retry_in_seconds: float | None = None,
    ) -> bool:
        params = {
            "p_event_id": event_id,
            "p_outcome": outcome,
            "p_status_code": status_code,
            "p_error": error,
            "p_retry_in_seconds": retry_in_seconds,
        }
        result = cast(dict[str, Any], self.transport.call("record_attempt", params))
        return bool(result.get("recorded"))

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self.transport.call("metrics", _of(transition) or None))

    def transitions(self) -> list[Transition]:
        names = [name for name, _ in TRANSITION_COLUMNS]
        rows = self.transport.rows("transitions", None, TRANSITION_COLUMNS)
        return [cast(Transition, dict(zip(names, row, strict=True))) for row in rows]

    def add_transition(
        self,
        name: str,
        *,
        table: str,
        key_column: str,
        time_column: str,
        state_column: str,
        from_states: list[str],
        to_state: str,
        job_prefix: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "p_name": name,
            "p_table": table,
            "p_key_column": key_column,
            "p_time_column": time_column,
            "p_state_column": state_column,
            "p_from_states": list(from_states),
            "p_to_state": to_state,
            "p_job_prefix": job_prefix,
        }
        result = cast(dict[str, Any], self.transport.call("add_transition", params))
        log.info("registered transition %s on %s", name, table)
        return result

    def remove_transition(self, name: str) -> dict[str, Any]:
        result = cast(dict[str, Any], self.transport.call("remove_transition", {"p_name": name}))
        log.info("removed transition %s", name)
        return result

    def _events(self, function: str, params: dict[str, Any]) -> list[Event]:
        names = [name for name, _ in EVENT_COLUMNS]
        rows = self.transport.rows(function, params, EVENT_COLUMNS)
        return [cast(Event, dict(zip(names, row, strict=True))) for row in rows]

    def doctor(self, *, transition: str | None = None) -> list[Check]:
        """pg_cron's settings, the schema and the triggers (when the transport can read the
        catalog), then what scheduler.health() and scheduler.history() answer for meetings and
        scheduler.transition_health() for each other transition (or for the one named)."""
        meetings = transition in (None, BUILTIN)
        checks: list[Check] = []
        if isinstance(self.transport, SqlTransport):
            if not _catalog_checks(self.transport, checks, meetings=meetings):
                return checks
            health = self.health()
        else:
            checks.append(OVER_REST)
            health = self.health()
            version = health.get("pg_cron_version")
            checks.append(
                Check(
                    name="pg_cron installed",
                    ok=version is not None,
                    detail=f"pg_cron {version}" if version else "extension pg_cron not created",
                    fix=None
                    if version
                    else "Enable pg_cron (Database → Extensions), then run the migrations.",
                )
            )
            checks.append(
                Check(
                    name="migrated",
                    ok=True,
                    detail="the scheduler's functions answer over RPC",
                    fix=None,
                )
            )
        # the registry, once the schema is known to be there
        listed = {t["name"]: t for t in self.transitions()}
        if transition is not None and transition not in listed:
            raise InvalidInput(
                f"no transition named {transition}",
                hint="scheduler-admin transitions list shows the registered ones.",
            )
        if meetings:
            failures = (
                self.history(failed_only=True, limit=3, transition=transition)
                if health["failed_runs_24h"]
                else []
            )
            checks += health_checks(health, failures)
            checks += security_checks(health.get("security"))
            builtin = next(t for t in listed.values() if t["builtin"])
            if builtin["paused"]:
                checks.append(
                    Check(
                        name=f"transition {builtin['name']}: active",
                        ok=False,
                        detail="paused by name",
                        fix=f"Run `scheduler-admin resume --transition {builtin['name']}` "
                        "(it also recovers).",
                    )
                )
        for name, row in listed.items():
            if not row["builtin"] and transition in (None, name):
                facts = self.transport.call("transition_health", {"p_name": name})
                checks += transition_checks(cast(dict[str, Any], facts))
        if not isinstance(self.transport, SqlTransport):
            checks.append(FULL_CHECK)
        return checks


def _of(transition: str | None) -> dict[str, Any]:
    """The argument naming one transition, none for all of them (the call of 0005 and before)."""
    return {} if transition is None else {"p_transition": transition}


def transition_checks(facts: dict[str, Any]) -> list[Check]:
    """doctor's checks of one transition but meetings, from ``scheduler.transition_health``."""
    name = facts["transition"]
    recover = f"Run `scheduler-admin recover --transition {name}`"
    rows = [
        (
            "active",
            not facts["paused"],
            "paused by name" if facts["paused"] else "not paused",
            f"Run `scheduler-admin resume --transition {name}` (it also recovers).",
        ),
        (
            "triggers",
            facts["triggers"] == 4,
            f"{facts['triggers']} of 4 triggers on {facts['table']} present and enabled",
            f"{recover} (it re-creates them); if they are disabled, `alter table "
            f"{facts['table']} enable trigger all`.",
        ),
        (
            "jobs",
            facts["missing_jobs"] == 0 and facts["orphan_jobs"] == 0,
            f"{facts['pending_rows']} pending, {facts['missing_jobs']} without a job, "
            f"{plural(facts['orphan_jobs'], 'orphan job')}",
            recover + ".",
        ),
        (
            "no overdue rows",
            facts["overdue_rows"] == 0,
            f"{plural(facts['overdue_rows'], 'pending row')} due over 2 minutes ago",
            f"{recover}; check that the reconcile job runs (`scheduler-admin history`).",
        ),
    ]
    return [
        Check(name=f"transition {name}: {what}", ok=ok, detail=detail, fix=None if ok else fix)
        for what, ok, detail, fix in rows
    ]


def _catalog_checks(transport: SqlTransport, checks: list[Check], *, meetings: bool = True) -> bool:
    """The checks only a direct connection can make, appended to ``checks``; False when one
    failed and the checks after it would only repeat it."""

    def check(name: str, ok: bool, detail: str, fix: str) -> bool:
        checks.append(Check(name=name, ok=ok, detail=detail, fix=None if ok else fix))
        return ok

    facts = transport.facts(FACTS)[0]
    # Without the right to read pg_cron's settings (Supabase's postgres role) the first two checks
    # are skipped: pg_cron can only be installed in its own database anyway, and the checks on
    # jobs show whether they run.
    if facts["can_read"]:
        if not check(
            "pg_cron preloaded",
            facts["cron_db"] is not None,
            "pg_cron is loaded at server start"
            if facts["cron_db"] is not None
            else "pg_cron is not in shared_preload_libraries",
            f"Set shared_preload_libraries = 'pg_cron' and cron.database_name = "
            f"'{facts['db']}' in postgresql.conf, then restart PostgreSQL.",
        ):
            return False
        if not check(
            "pg_cron runs in this database",
            facts["cron_db"] == facts["db"],
            f"cron.database_name = {facts['cron_db']}",
            f"Set cron.database_name = '{facts['db']}' and restart, or point the scheduler "
            f"at database {facts['cron_db']}.",
        ):
            return False
    unread = "" if facts["can_read"] else " (this role cannot read pg_cron's settings)"
    if not check(
        "pg_cron installed",
        facts["version"] is not None,
        (f"pg_cron {facts['version']}" if facts["version"] else "extension pg_cron not created")
        + unread,
        "Run `scheduler-admin migrate` (it creates the extension; on Supabase enable pg_cron "
        "under Database > Extensions first).",
    ):
        return False
    if not check(
        "migrated",
        bool(facts["migrated"] and facts["has_meetings"]),
        "schema scheduler present" if facts["migrated"] else "schema scheduler missing",
        "Run `scheduler-admin migrate`.",
    ):
        return False
    if not meetings:  # doctor of another transition: its own triggers are checked
        return True
    check(
        "triggers on meetings",
        facts["triggers"] == 4,
        f"{facts['triggers']} of 4 triggers present and enabled",
        "Run `scheduler-admin migrate`; if they are disabled, `alter table meetings enable "
        "trigger all`.",
    )
    return True
