"""Completion events and the webhook dispatcher's functions on the Supabase shape: recorded by
the jobs' owner (not a superuser, cron.unschedule per job where it may not write cron.job),
read and claimed over REST as service_role, closed to the API roles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import psycopg
import pytest
from pg_helpers import poll, reconcile_job_inactive, run_command
from postgrest_adapter import PostgrestAdapter
from supabase_shape import ANON_KEY, SERVICE_KEY, SupabaseShape
from webhook_helpers import WebhookReceiver

from scheduler_admin.backends.supabase import SupabaseBackend
from scheduler_admin.backends.transport import parse_time
from scheduler_admin.exceptions import PermissionDenied
from scheduler_admin.webhooks import Dispatcher

UTC = timezone.utc


@pytest.fixture
def quiet(supa: SupabaseShape) -> Iterator[None]:
    """The reconcile job out: the tests' meetings are completed by what each test runs."""
    with psycopg.connect(supa.dsn(), autocommit=True) as su, reconcile_job_inactive(su):
        yield


def ended_meetings(supa: SupabaseShape, count: int) -> list[str]:
    """Upcoming meetings whose end time has just passed; their jobs deactivated."""
    with supa.superuser() as su:
        end = su.execute("select clock_timestamp() + interval '200 milliseconds'").fetchone()[0]  # type: ignore[index]
        ids = [
            str(r[0])
            for r in su.execute(
                "insert into meetings (title, end_time) select 'm', %s "
                "from generate_series(1, %s) returning id",
                (end, count),
            ).fetchall()
        ]
        su.execute(
            "update cron.job set active = false where jobname ~ '^meeting-status-[0-9a-f-]{36}$'"
        )
        assert poll(
            lambda: su.execute("select clock_timestamp() > %s", (end,)).fetchone()[0],  # type: ignore[index]
            timeout=5,
            interval=0.05,
        )
    return ids


def test_the_job_owner_records_events_and_service_role_delivers_them_over_rest(
    supa: SupabaseShape, rest: PostgrestAdapter, quiet: None
) -> None:
    backend = SupabaseBackend(rest.url, SERVICE_KEY)
    try:
        assert backend.set_webhooks(True) == {"webhooks": True}
        ids = ended_meetings(supa, 3)
        with psycopg.connect(supa.dsn("migrator"), autocommit=True) as owner:
            # what a meeting's job runs, as the jobs' owner
            assert run_command(owner, "select scheduler.complete_due_meetings()") == 3
        claimed = backend.claim_events(limit=2, lease_seconds=30)
        assert len(claimed) == 2
        first = claimed[0]
        assert first["path"] == "job" and first["delivery"] == "pending"
        assert first["attempts"] == 1 and first["meeting_id"] in ids
        completed, ended = parse_time(first["completed_at"]), parse_time(first["end_time"])
        assert completed is not None and ended is not None
        assert first["lateness_seconds"] == pytest.approx(
            (datetime.fromisoformat(completed) - datetime.fromisoformat(ended)).total_seconds()
        )
        assert backend.record_attempt(first["event_id"], outcome="delivered", status_code=204)
        assert backend.record_attempt(
            claimed[1]["event_id"], outcome="retry", status_code=503, retry_in_seconds=3600
        )
        assert not backend.record_attempt(first["event_id"], outcome="failed", error="late")
        assert len(backend.claim_events(limit=10, lease_seconds=30)) == 1  # the third
        by_id = {e["event_id"]: e for e in backend.events()}
        assert by_id[first["event_id"]]["delivery"] == "delivered"
        assert by_id[claimed[1]["event_id"]]["delivery"] == "pending"
        metrics = backend.metrics()
        assert metrics["completions"]["job"] == 3
        assert metrics["webhooks"]["delivered"] == 1 and metrics["webhooks"]["backlog"] == 2
        # the retry and the late failure report: attempts that did not deliver
        assert metrics["webhooks"]["attempt_failures"] == 2
        assert metrics["upcoming_meetings"] == 0
    finally:
        backend.close()


def test_a_burst_on_the_per_call_path_records_every_completion_once(
    supa: SupabaseShape, quiet: None
) -> None:
    """Where the owner may not write cron.job a run completes at most 1000 meetings; the runs
    that follow complete the rest: every meeting has exactly one event."""
    ended_meetings(supa, 1500)
    with psycopg.connect(supa.dsn("migrator"), autocommit=True) as owner:
        while run_command(owner, "select scheduler.complete_due_meetings()"):
            pass
    with supa.superuser() as su:
        assert su.execute(
            "select count(*), count(distinct meeting_id) from scheduler.completion_events"
        ).fetchone() == (1500, 1500)
        assert su.execute("select count(*) from meetings where status = 'upcoming'").fetchone() == (
            0,
        )


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_can_neither_read_nor_claim_events(supa: SupabaseShape, role: str) -> None:
    for statement in (
        "select * from scheduler.completion_events",
        "select * from scheduler.claim_events(10, 30)",
        "select scheduler.record_attempt(1, 'delivered')",
        "select scheduler.set_webhooks(true)",
        "select scheduler.metrics()",
        "select * from scheduler.events()",
    ):
        with supa.as_role(role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_the_anon_key_is_refused_over_rest(supa: SupabaseShape, rest: PostgrestAdapter) -> None:
    backend = SupabaseBackend(rest.url, ANON_KEY)
    try:
        with pytest.raises(PermissionDenied):
            backend.claim_events(limit=1, lease_seconds=30)
    finally:
        backend.close()


def test_the_dispatcher_delivers_over_rest_with_retries(
    supa: SupabaseShape, rest: PostgrestAdapter, quiet: None
) -> None:
    """The dispatcher with the service_role key (no direct connection): a receiver answering 500
    first gets the event again, with the same idempotency key, and it is recorded delivered."""
    with WebhookReceiver() as receiver:
        receiver.script(500)
        dispatcher = Dispatcher(
            SupabaseBackend(rest.url, SERVICE_KEY),
            receiver.url,
            timeout=2.0,
            backoff_base=0.01,
            backoff_cap=0.05,
        )
        try:
            dispatcher.run_once()  # turns webhooks on; nothing is due yet
            ids = ended_meetings(supa, 1)
            with psycopg.connect(supa.dsn("migrator"), autocommit=True) as owner:
                assert run_command(owner, "select scheduler.complete_due_meetings()") == 1

            def delivered() -> bool:
                dispatcher.run_once()
                with supa.superuser() as su:
                    row = su.execute(
                        "select delivery from scheduler.completion_events where meeting_id = %s",
                        (ids[0],),
                    ).fetchone()
                return row is not None and row[0] == "delivered"

            assert poll(delivered, timeout=20, interval=0.1)
        finally:
            dispatcher.close()
        sent = receiver.received()
    assert [r.json["attempt"] for r in sent] == [1, 2]
    assert len({r.key for r in sent}) == 1 and sent[0].json["meeting_id"] == ids[0]
    with supa.superuser() as su:
        assert su.execute(
            "select outcome, status_code from scheduler.webhook_attempts order by attempt_id"
        ).fetchall() == [("retry", 500), ("delivered", 200)]
