"""The waker over Supabase's REST API: no LISTEN over REST, so it re-polls scheduler.wake()
through RPC as service_role; a meeting is done within the poll interval + 0.5 s of its end."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from pg_helpers import poll
from postgrest_adapter import PostgrestAdapter
from supabase_shape import SERVICE_KEY, SupabaseShape

from scheduler_admin.backends.supabase import SupabaseBackend
from scheduler_admin.waker import REST_POLL, PollingSource, Waker

BOUND = REST_POLL + 0.5


def test_the_rest_waker_completes_a_meeting_within_its_poll_interval(
    supa: SupabaseShape, rest: PostgrestAdapter
) -> None:
    waker = Waker(PollingSource(SupabaseBackend(rest.url, SERVICE_KEY), REST_POLL, rest.url))
    waker.start_thread()
    try:
        assert poll(lambda: waker.cycles >= 1, timeout=10, interval=0.05), waker.failures
        with supa.superuser() as su:
            (now,) = su.execute("select clock_timestamp()").fetchone()  # type: ignore[misc]
            assert isinstance(now, datetime)
            end = now + timedelta(seconds=1.5)
            # away from minute boundaries, where pg_cron's minute tick could complete it first
            while end.second < 3 or end.second >= 57:
                end += timedelta(seconds=1)
            ends = [end, end + timedelta(seconds=0.7)]
            ids = [
                su.execute(
                    "insert into meetings (title, end_time) values ('rest', %s) returning id",
                    (e,),
                ).fetchone()[0]  # type: ignore[index]
                for e in ends
            ]
            assert poll(
                lambda: su.execute(
                    "select bool_and(status = 'done') from meetings where id = any(%s)", (ids,)
                ).fetchone()[0],  # type: ignore[index]
                timeout=15,
                interval=0.05,
            )
            late = [
                float(row[0])
                for row in su.execute(
                    "select extract(epoch from updated_at - end_time)::float8 from meetings "
                    "where id = any(%s)",
                    (ids,),
                ).fetchall()
            ]
    finally:
        waker.stop()
    print(
        f"\n[waker latency] Supabase REST (poll {REST_POLL:g} s): n={len(late)} "
        f"p50={statistics.median(late):.3f}s max={max(late):.3f}s"
    )
    assert all(0 <= s <= BOUND for s in late), late
    assert waker.completed == 2 and waker.failures == 0


def test_two_rest_wakers_elect_one_which_completes_the_meeting(
    supa: SupabaseShape, rest: PostgrestAdapter
) -> None:
    """Over REST the wakers elect one through RPC (scheduler.claim_waker as service_role): one
    is active and holds the lease, the other stands by and never calls wake()."""
    two = [
        Waker(PollingSource(SupabaseBackend(rest.url, SERVICE_KEY), REST_POLL, rest.url))
        for _ in range(2)
    ]
    for waker in two:
        waker.start_thread()
    try:
        assert poll(lambda: sorted(w.role or "" for w in two) == ["active", "standby"], 10, 0.05)
        (active,) = [w for w in two if w.active]
        (standby,) = [w for w in two if not w.active]
        with supa.superuser() as su:
            holder = su.execute("select holder from scheduler.waker_lease").fetchall()
            assert holder == [(active.holder,)]
            (now,) = su.execute("select clock_timestamp()").fetchone()  # type: ignore[misc]
            end = now + timedelta(seconds=1.5)
            while end.second < 3 or end.second >= 57:  # away from pg_cron's minute tick
                end += timedelta(seconds=1)
            (meeting_id,) = su.execute(
                "insert into meetings (title, end_time) values ('rest', %s) returning id", (end,)
            ).fetchone()  # type: ignore[misc]
            assert poll(
                lambda: su.execute(
                    "select status = 'done' from meetings where id = %s", (meeting_id,)
                ).fetchone()[0],  # type: ignore[index]
                timeout=15,
                interval=0.05,
            )
    finally:
        for waker in two:
            waker.stop()
    assert active.completed == 1 and standby.cycles == 0
    assert [w.failures for w in two] == [0, 0]
