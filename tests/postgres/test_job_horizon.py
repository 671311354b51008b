"""The job horizon on PostgreSQL (issue 25): a pending row gets its pg_cron job only once its time
is within the horizon of its transition; the reconcile job registers the rows entering it; every
other path (triggers, recover, reconcile, health, list-jobs, metrics, pause/resume, another
transition) honours it. Rows of different horizons are told apart by cron.job itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from pg_helpers import (
    Conn,
    Server,
    db_now,
    insert_meeting,
    job_name,
    meeting_jobs,
    migrate,
    poll,
    reconcile_job_inactive,
    status_of,
    value,
)

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.exceptions import InvalidInput

UTC = timezone.utc


@pytest.fixture(autouse=True)
def no_tick(db: Conn) -> Iterator[None]:
    """The reconcile job out: the tests call reconcile() themselves."""
    with reconcile_job_inactive(db):
        yield


@pytest.fixture
def backend(migrated: Server) -> Iterator[PostgresBackend]:
    b = PostgresBackend(migrated.url)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def statements_on_cron_job(db: Conn) -> Iterator[Conn]:
    """A statement-level trigger on cron.job counting every statement that writes it (pg_cron
    reloads all its jobs after each one): the count is read from a table of the test's own."""
    db.execute("create table if not exists public.cron_job_statements (n bigint not null)")
    db.execute("truncate public.cron_job_statements")
    db.execute(
        "create or replace function public.count_cron_job_statement() returns trigger "
        "language plpgsql as $$ begin insert into public.cron_job_statements values (1); "
        "return null; end $$"
    )
    db.execute(
        "create trigger test_count_statements after insert or update or delete on cron.job "
        "for each statement execute function public.count_cron_job_statement()"
    )
    db.execute("grant insert on public.cron_job_statements to public")
    try:
        yield db
    finally:
        db.execute("drop trigger if exists test_count_statements on cron.job")
        db.execute("drop function if exists public.count_cron_job_statement()")
        db.execute("drop table if exists public.cron_job_statements")


def statements(db: Conn) -> int:
    return int(value(db, "select count(*) from public.cron_job_statements"))


def set_horizon(db: Conn, horizon: str | None, transition: str | None = None) -> None:
    db.execute("select scheduler.set_job_horizon(%s::interval, %s)", (horizon, transition))


def reconcile(db: Conn) -> dict[str, object]:
    report = value(db, "select scheduler.reconcile()")
    assert isinstance(report, dict)
    return report


def add(db: Conn, end_time: datetime) -> object:
    """A new upcoming meeting ending at end_time: its id."""
    return insert_meeting(db, end_time)[0]


def has_job(db: Conn, meeting_id: object) -> bool:
    return job_name(meeting_id) in meeting_jobs(db)


def test_the_setting_refuses_a_horizon_under_15_minutes_and_an_unknown_transition(
    db: Conn,
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        set_horizon(db, "14 minutes 59 seconds")
    assert "at least 15 minutes" in str(info.value)
    assert info.value.diag.message_hint and "reconcile job" in info.value.diag.message_hint
    with pytest.raises(psycopg.errors.NoDataFound):
        set_horizon(db, "1 day", "no_such_transition")
    # the table refuses it too, whoever writes it
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("update scheduler.settings set job_horizon = interval '1 minute'")
    assert value(db, "select job_horizon from scheduler.settings") is None
    set_horizon(db, "15 minutes")
    assert value(db, "select job_horizon from scheduler.settings") == timedelta(minutes=15)


def test_a_row_beyond_the_horizon_has_no_job_and_costs_pg_cron_no_reload(
    db: Conn, statements_on_cron_job: Conn
) -> None:
    set_horizon(db, "1 day")
    now = db_now(db)
    before = statements(db)
    far = [add(db, now + timedelta(days=3, minutes=i)) for i in range(5)]
    assert statements(db) == before, "an insert beyond the horizon wrote cron.job"
    near = add(db, now + timedelta(hours=2))
    # (INSERT ... ON CONFLICT DO UPDATE fires the INSERT and the UPDATE statement triggers)
    after_near = statements(db)
    assert after_near > before
    assert not any(has_job(db, m) for m in far)
    assert has_job(db, near)
    # an update of a row beyond the horizon that keeps it beyond writes nothing either
    db.execute(
        "update public.meetings set end_time = end_time + interval '1 hour' where id = any(%s)",
        (far,),
    )
    db.execute("delete from public.meetings where id = %s", (far[0],))
    assert statements(db) == after_near


def test_a_row_moved_beyond_the_horizon_loses_its_job_and_gets_it_back(db: Conn) -> None:
    set_horizon(db, "1 day")
    now = db_now(db)
    m = add(db, now + timedelta(hours=3))
    assert has_job(db, m)
    db.execute(
        "update public.meetings set end_time = %s where id = %s", (now + timedelta(days=2), m)
    )
    assert not has_job(db, m)
    back = now + timedelta(hours=5, seconds=30)
    db.execute("update public.meetings set end_time = %s where id = %s", (back, m))
    jobs = meeting_jobs(db)
    assert job_name(m) in jobs
    minute = (back + timedelta(minutes=1)).astimezone(UTC)
    assert jobs[job_name(m)][0] == f"{minute.minute} {minute.hour} {minute.day} {minute.month} *"


def test_the_reconcile_job_registers_a_row_as_it_enters_the_horizon(db: Conn) -> None:
    """A row 3 s beyond the horizon has no job; reconcile() called until then registers it
    once its time is within the horizon, and not before."""
    set_horizon(db, "1 day")
    now = db_now(db)
    m = add(db, now + timedelta(days=1, seconds=3))
    assert not has_job(db, m)
    first = reconcile(db)
    assert first["beyond_horizon"] == 1 and first["jobs_scheduled"] == 0
    assert not has_job(db, m)

    def registered() -> bool:
        report = reconcile(db)
        return has_job(db, m) and report["beyond_horizon"] == 0

    assert poll(registered, timeout=15, interval=0.5)
    assert db_now(db) >= now + timedelta(seconds=3)
    assert status_of(db, m) == "upcoming"


def test_shrinking_the_horizon_removes_the_jobs_beyond_it_and_growing_it_adds_them(
    db: Conn, backend: PostgresBackend
) -> None:
    now = db_now(db)
    ids = [add(db, now + timedelta(days=d)) for d in (1, 5, 10)]
    assert all(has_job(db, m) for m in ids)
    set_horizon(db, "2 days")
    report = backend.recover()
    assert report["orphans_removed"] == 2 and report["beyond_horizon"] == 2
    assert [has_job(db, m) for m in ids] == [True, False, False]
    health = backend.health()
    assert health["missing_jobs"] == 0 and health["orphan_jobs"] == 0
    assert health["upcoming_meetings"] == 3 and health["beyond_horizon"] == 2
    assert health["job_horizon"] == "2 days"
    set_horizon(db, "7 days")
    report = backend.recover()
    assert report["jobs_scheduled"] == 1 and report["beyond_horizon"] == 1
    assert [has_job(db, m) for m in ids] == [True, True, False]
    set_horizon(db, None)
    assert backend.recover()["jobs_scheduled"] == 1
    assert all(has_job(db, m) for m in ids)


def test_list_jobs_shows_the_rows_beyond_the_horizon_with_their_registration_time(
    db: Conn, backend: PostgresBackend
) -> None:
    set_horizon(db, "1 day")
    now = db_now(db)
    near = add(db, now + timedelta(hours=1))
    far_end = now + timedelta(days=4)
    far = add(db, far_end)
    jobs = {j["key"]: j for j in backend.list_jobs() if j["key"]}
    assert jobs[str(near)]["job_id"] is not None and jobs[str(near)]["registered_at"] is None
    deferred = jobs[str(far)]
    assert deferred["job_id"] is None and deferred["job_name"] == job_name(far)
    assert deferred["registered_at"] is not None
    registered_at = datetime.fromisoformat(deferred["registered_at"])
    assert registered_at == far_end - timedelta(days=1)
    assert datetime.fromisoformat(str(deferred["next_run"])) >= far_end
    assert deferred["meeting_status"] == "upcoming"


def test_pause_across_the_boundary_then_resume_registers_only_the_rows_within(
    db: Conn, backend: PostgresBackend
) -> None:
    set_horizon(db, "1 day")
    backend.pause()
    now = db_now(db)
    near = add(db, now + timedelta(hours=6))
    far = add(db, now + timedelta(days=6))
    assert not has_job(db, near) and not has_job(db, far)
    report = backend.resume()
    assert report["jobs_scheduled"] == 1
    assert has_job(db, near) and not has_job(db, far)


def test_a_transition_has_its_own_horizon_over_the_default(
    db: Conn, backend: PostgresBackend
) -> None:
    db.execute(
        "create table public.trials (id bigint generated always as identity primary key, "
        "status text not null default 'active', ends_at timestamptz not null)"
    )
    try:
        db.execute(
            "select scheduler.add_transition('trials', 'public.trials', 'id', 'ends_at', "
            "'status', array['active'], 'expired')"
        )
        set_horizon(db, "1 day")
        set_horizon(db, "7 days", "trials")
        now = db_now(db)
        key = value(
            db,
            "insert into public.trials (ends_at) values (%s) returning id",
            (now + timedelta(days=3),),
        )
        beyond = value(
            db,
            "insert into public.trials (ends_at) values (%s) returning id",
            (now + timedelta(days=9),),
        )
        meeting = add(db, now + timedelta(days=3))
        names = {r[0] for r in db.execute("select jobname from cron.job")}
        assert f"trials-status-{key}" in names and f"trials-status-{beyond}" not in names
        assert job_name(meeting) not in names
        horizons = {h["transition"]: h for h in backend.horizons()}
        assert horizons["trials"]["job_horizon"] == "7 days" and horizons["trials"]["own"]
        assert horizons["trials"]["beyond_horizon"] == 1
        assert horizons["meetings"]["job_horizon"] == "1 day"
        assert not horizons["meetings"]["own"]
        report = backend.recover(transition="trials")
        assert dict(report)["beyond_horizon"] == 1
        # the transition's own back to the default
        set_horizon(db, None, "trials")
        assert {h["transition"]: h for h in backend.horizons()}["trials"]["job_horizon"] == "1 day"
        reconcile(db)
        names = {r[0] for r in db.execute("select jobname from cron.job")}
        assert f"trials-status-{key}" not in names
    finally:
        db.execute("select scheduler.remove_transition('trials')")
        db.execute("drop table public.trials")


def test_the_backend_sets_the_horizon_and_refuses_a_short_one(backend: PostgresBackend) -> None:
    assert backend.set_job_horizon("2 days")["job_horizon"] == "2 days"
    with pytest.raises(InvalidInput) as info:
        backend.set_job_horizon("10 minutes")
    assert "at least 15 minutes" in str(info.value)
    assert backend.set_job_horizon(None)["job_horizon"] is None


def test_the_migration_sets_the_horizon_it_is_given_and_refuses_a_bad_one(
    db: Conn, migrated: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SCHEDULER_JOB_HORIZON (or -x job_horizon=...) is stored by the migration; none clears it;
    an unreadable or too short one fails it with the reason and changes nothing."""
    monkeypatch.setenv("SCHEDULER_JOB_HORIZON", "36h")
    migrate(migrated)
    assert value(db, "select job_horizon from scheduler.settings") == timedelta(hours=36)
    for bad, reason in (("soon", "cannot read"), ("10m", "at least 15 minutes")):
        monkeypatch.setenv("SCHEDULER_JOB_HORIZON", bad)
        with pytest.raises(InvalidInput, match=reason):
            migrate(migrated)
        assert value(db, "select job_horizon from scheduler.settings") == timedelta(hours=36)
    monkeypatch.setenv("SCHEDULER_JOB_HORIZON", "none")
    migrate(migrated)
    assert value(db, "select job_horizon from scheduler.settings") is None
