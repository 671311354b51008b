"""The benchmark scenarios. Each function measures one run and returns plain numbers.

Every scenario starts from :func:`benchmarks.common.clean` so that runs are independent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import (
    JOB_PATTERN,
    REPO_ROOT,
    clean,
    connect,
    count_our_jobs,
    function_exists,
    log,
    log_offset,
    scan_log,
    sleep_until,
    utcnow,
)

# Meetings of the write and recovery scenarios end at least this far ahead, so that none of
# their jobs can fire while the benchmark runs.
FAR_AHEAD = "interval '3 days'"


class NotAvailable(Exception):
    """The interface a scenario needs does not exist yet in this checkout."""


# --------------------------------------------------------------------------- write overhead


def _single_row_rate(dsn: str, table: str, seconds: float, clients: int) -> float:
    """Inserts per second of ``clients`` connections, each inserting one row per transaction."""
    counts = [0] * clients
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]
    errors: list[BaseException] = []

    def client(idx: int) -> None:
        try:
            with connect(dsn) as conn:
                sql = (
                    f"insert into {table} (title, start_time, end_time) "
                    f"values ('bench', now() + {FAR_AHEAD}, "
                    f"now() + {FAR_AHEAD} + %s * interval '1 second')"
                )
                n = 0
                barrier.wait()
                while time.perf_counter() < stop_at[0]:
                    conn.execute(sql, (n * clients + idx,), prepare=True)
                    n += 1
                counts[idx] = n
        except BaseException as exc:  # report, don't hang the barrier
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    stop_at[0] = time.perf_counter() + seconds + 0.5  # connections open before the clock starts
    barrier.wait()
    start = time.perf_counter()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def _statement_rate(dsn: str, table: str, rows: int) -> float:
    with connect(dsn) as conn:
        start = time.perf_counter()
        conn.execute(
            f"insert into {table} (title, start_time, end_time) "
            f"select 'bench', e - interval '1 hour', e from ("
            f"  select now() + {FAR_AHEAD} + i * interval '37 seconds' as e "
            f"  from generate_series(1, {int(rows)}) i) s"
        )
        return rows / (time.perf_counter() - start)


def write_overhead_once(
    dsn: str, rep: int, seconds: float, clients: int, rows: int
) -> dict[str, float]:
    """One repetition: both tables, single-row and one statement, in alternating order."""
    tables = ["public.meetings", "bench.meetings_plain"]
    if rep % 2:
        tables.reverse()
    out: dict[str, float] = {}
    with connect(dsn) as conn:
        for table in tables:
            key = "triggers" if table == "public.meetings" else "plain"
            clean(conn)
            out[f"single_{key}"] = _single_row_rate(dsn, table, seconds, clients)
        for table in tables:
            key = "triggers" if table == "public.meetings" else "plain"
            clean(conn)
            out[f"statement_{key}"] = _statement_rate(dsn, table, rows)
        clean(conn)
    out["single_ratio"] = out["single_triggers"] / out["single_plain"]
    out["statement_ratio"] = out["statement_triggers"] / out["statement_plain"]
    return out


def _single_row_us(conn: psycopg.Connection[Any], table: str, n: int) -> float:
    """Microseconds per single-row autocommit insert (one client, prepared, fsync on)."""
    sql = (
        f"insert into {table} (title, start_time, end_time) "
        f"values ('bench', now() + {FAR_AHEAD}, now() + {FAR_AHEAD} + %s * interval '1 second')"
    )
    start = time.perf_counter()
    for i in range(n):
        conn.execute(sql, (i,), prepare=True)
    return (time.perf_counter() - start) / n * 1e6


def write_cost_once(
    dsn: str,
    rows: int,
    single_rows: int,
    rep: int = 0,
    admin_dsn: str | None = None,
    batch: int = 2000,
) -> dict[str, float]:
    """Microseconds per meeting written as the role of ``dsn`` (the owner of public.meetings),
    through our triggers and into bench.meetings_plain (no triggers), in alternating order:
    ``rows`` meetings in ``batch``-row ``insert … select`` statements (autocommit each), and
    ``single_rows`` single-row autocommit inserts from one client. End times are days ahead."""
    tables = ["public.meetings", "bench.meetings_plain"]
    if rep % 2:
        tables.reverse()
    out: dict[str, float] = {}
    with connect(admin_dsn or dsn) as admin, connect(dsn) as conn:
        for table in tables:
            key = "triggers" if table == "public.meetings" else "plain"
            clean(admin)
            start = time.perf_counter()
            for offset in range(0, rows, batch):
                conn.execute(
                    f"insert into {table} (title, start_time, end_time) "
                    "select 'bench', e - interval '1 hour', e from ("
                    f"  select now() + {FAR_AHEAD} + i * interval '37 seconds' as e "
                    "  from generate_series(%s::int, %s::int) i) s",
                    (offset, min(rows, offset + batch) - 1),
                )
            out[f"batch_{key}_us"] = (time.perf_counter() - start) / rows * 1e6
        for table in tables:
            key = "triggers" if table == "public.meetings" else "plain"
            clean(admin)
            out[f"single_{key}_us"] = _single_row_us(conn, table, single_rows)
        clean(admin)
    return out


BREAKDOWN_LABELS = [
    ("plain", "plain insert"),
    ("before_trigger_only", "+ BEFORE row trigger"),
    ("capture_noop", "+ AFTER statement trigger with transition table, no-op (capture)"),
    ("capture_agg", "+ array_agg of the transition table"),
    ("with_triggers", "real insert (registers jobs)"),
    ("with_triggers_no_inval", "real insert, pg_cron's cache-invalidation trigger off"),
    ("register_jobs", "scheduler.register_jobs() alone"),
    ("register_jobs_no_inval", "register_jobs() alone, invalidation trigger off"),
    ("job_copy_upsert", "its INSERT ... ON CONFLICT into a copy of cron.job (no pg_cron trigger)"),
    ("job_copy_insert", "same, plain INSERT (no ON CONFLICT)"),
    ("cron_schedule_path", "cron.schedule per meeting (non-superuser path)"),
    ("cron_schedule_only", "cron.schedule, constant args"),
    ("schedule_expr", "scheduler.job_specs() alone (names, schedules, commands of the set)"),
]

SINGLE_LABELS = [
    ("plain", "plain insert"),
    ("before_trigger_only", "+ BEFORE row trigger"),
    ("capture_noop", "+ AFTER statement trigger with transition table, no-op"),
    ("with_triggers", "real insert (registers a job)"),
    ("with_triggers_no_inval", "real insert, pg_cron's cache-invalidation trigger off"),
]


def write_breakdown(
    dsn: str, rows: int, single_rows: int = 1000, rounds: int = 3
) -> dict[str, float]:
    """Microseconds per row of each piece of the insert path, side by side in one run (medians
    of ``rounds`` rounds in alternating order; ``<key>_runs`` holds every round's figure).

    Bulk (one statement of ``rows`` rows each, keys of BREAKDOWN_LABELS) and single-row
    autocommit inserts from one client (``single_<key>``, keys of SINGLE_LABELS):

    * plain: bench.meetings_plain (no triggers);
    * before_trigger_only: public.meetings with the AFTER INSERT trigger disabled;
    * capture_noop / capture_agg: bench.meetings_capture, which has our BEFORE row trigger and an
      AFTER statement trigger with a transition table that does nothing / only aggregates the
      transition table into the two arrays our trigger passes to register_jobs;
    * with_triggers: the real insert; *_no_inval: with pg_cron's statement trigger
      cron_job_cache_invalidate on cron.job disabled (benchmark-only);
    * register_jobs: scheduler.register_jobs(ids, end_times) alone (the set-based INSERT ... ON
      CONFLICT into cron.job the triggers run when the owner may write cron.job);
    * job_copy_upsert / job_copy_insert: that INSERT (with and without ON CONFLICT) into
      bench.job_copy, a copy of cron.job's columns and indexes without pg_cron's trigger;
    * cron_schedule_path: cron.schedule per meeting (the path when the owner may not write
      cron.job, e.g. Supabase); cron_schedule_only: cron.schedule with constant arguments;
    * schedule_expr: scheduler.job_specs() alone (what registration computes per set).
    """
    n = int(rows)
    ends = f"now() + {FAR_AHEAD} + i * interval '37 seconds'"
    gen = f"from generate_series(1, {n}) i"
    # what register_jobs inserts: the job specs of the set, computed once per set
    specs = (
        f"scheduler.job_specs((select array_agg(gen_random_uuid()) {gen}), "
        f"(select array_agg({ends}) {gen}))"
    )
    job_select = (
        "select s.schedule, s.command, "
        "coalesce(current_setting('cron.host', true), 'localhost'), current_setting('port')::integer, "
        f"current_database(), current_user, s.job_name from {specs} s"
    )
    job_cols = "(schedule, command, nodename, nodeport, database, username, jobname)"
    pieces = {
        "plain": f"insert into bench.meetings_plain (title, end_time) select 'bench', {ends} {gen}",
        "before_trigger_only": f"insert into public.meetings (title, end_time) select 'bench', {ends} {gen}",
        "capture_noop": f"insert into bench.meetings_capture (title, end_time) select 'bench', {ends} {gen}",
        "capture_agg": f"insert into bench.meetings_capture (title, end_time) select 'bench', {ends} {gen}",
        "with_triggers": f"insert into public.meetings (title, end_time) select 'bench', {ends} {gen}",
        "with_triggers_no_inval": f"insert into public.meetings (title, end_time) select 'bench', {ends} {gen}",
        "register_jobs": f"select scheduler.register_jobs(array_agg(gen_random_uuid()), array_agg({ends})) {gen}",
        "register_jobs_no_inval": f"select scheduler.register_jobs(array_agg(gen_random_uuid()), array_agg({ends})) {gen}",
        "job_copy_upsert": (
            f"insert into bench.job_copy as j {job_cols} {job_select} "
            "on conflict (jobname, username) do update set schedule = excluded.schedule, "
            "command = excluded.command where j.schedule <> excluded.schedule or j.command <> excluded.command"
        ),
        "job_copy_insert": f"insert into bench.job_copy {job_cols} {job_select}",
        "cron_schedule_path": f"select count(cron.schedule(s.job_name::text, s.schedule, s.command)) from {specs} s",
        "cron_schedule_only": f"select count(cron.schedule('meeting-status-' || gen_random_uuid(), "
        f"'5 4 3 2 *', 'select 1')) {gen}",
        "schedule_expr": f"select count(s.schedule) from {specs} s",
    }
    single_tables = {
        "plain": "bench.meetings_plain",
        "before_trigger_only": "public.meetings",
        "capture_noop": "bench.meetings_capture",
        "with_triggers": "public.meetings",
        "with_triggers_no_inval": "public.meetings",
    }

    def setup(conn: psycopg.Connection[Any], name: str, on: bool) -> None:
        verb = "disable" if on else "enable"
        if name == "before_trigger_only":
            conn.execute(
                f"alter table public.meetings {verb} trigger scheduler_meetings_after_insert"
            )
        elif name.endswith("_no_inval"):
            conn.execute(f"alter table cron.job {verb} trigger cron_job_cache_invalidate")
        elif name.startswith("capture_") and on:
            conn.execute(
                "select set_config('bench.after_mode', %s, false)", (name.removeprefix("capture_"),)
            )

    # Each piece ``rounds`` times, in alternating order (the machine has shared cores); medians.
    samples: dict[str, list[float]] = {}
    with connect(dsn) as conn:
        for rnd in range(rounds):
            order = list(pieces.items())
            for name, sql in order if rnd % 2 == 0 else reversed(order):
                clean(conn)
                setup(conn, name, True)
                try:
                    start = time.perf_counter()
                    conn.execute(sql)
                    samples.setdefault(name, []).append((time.perf_counter() - start) / n * 1e6)
                except psycopg.Error as exc:  # a piece the current schema does not have
                    log(f"breakdown {name}: {exc}")
                finally:
                    setup(conn, name, False)
            singles = list(single_tables.items())
            for name, table in singles if rnd % 2 == 0 else reversed(singles):
                clean(conn)
                setup(conn, name, True)
                try:
                    us = _single_row_us(conn, table, single_rows)
                    samples.setdefault(f"single_{name}", []).append(us)
                finally:
                    setup(conn, name, False)
        clean(conn)
    out: dict[str, float] = {k: float(statistics.median(v)) for k, v in samples.items()}
    out |= {f"{k}_runs": v for k, v in samples.items()}  # type: ignore[dict-item]
    return out


# --------------------------------------------------------------------------------- burst


@dataclass
class BurstPlan:
    """When a burst of ``size`` meetings must start inserting so that it fires at ``minute``."""

    size: int
    minute: dt.datetime  # M: the cron tick at which every job of the burst fires
    spread: float  # end times spread over (M - spread, M]
    insert_start: dt.datetime  # latest moment to start inserting
    est_insert: float


@dataclass
class InsertRate:
    """Learned cost of inserting meetings with our triggers (seconds per row), kept pessimistic."""

    per_row: float = 700e-6
    samples: list[float] = field(default_factory=list)

    def estimate(self, size: int) -> float:
        return size * self.per_row * 1.25 + 2.0

    def learn(self, size: int, seconds: float) -> None:
        if size >= 1000:
            self.samples.append(seconds / size)
            self.per_row = max(self.samples[-3:])


def plan_burst(size: int, rate: InsertRate, min_spread: float, margin: float = 5.0) -> BurstPlan:
    """The earliest minute M such that the meetings can be inserted and end in (M - spread, M].

    The spread is at least ``min_spread`` and at most 60 s: inserting starts at once and every
    end time lies after the (pessimistically estimated) end of the insert.
    """
    now = utcnow()
    est = rate.estimate(size)
    earliest_end = now + dt.timedelta(seconds=est + margin + min_spread)
    minute = earliest_end.replace(second=0, microsecond=0)
    if minute < earliest_end:
        minute += dt.timedelta(minutes=1)
    insert_start = minute - dt.timedelta(seconds=min_spread + margin + est)
    return BurstPlan(size, minute, min_spread, insert_start, est)


# Job runs that hold or want one of pg_cron's connections (cron.max_running_jobs bounds them).
ACTIVE_RUN = "status in ('starting', 'connecting', 'sending', 'running')"

# Most runs at once, from the start and end times pg_cron recorded (ends sort before starts at
# the same instant).
MAX_OVERLAP_SQL = """
with ev as (
    select start_time as t, 1 as d from cron.job_run_details where start_time is not null
    union all
    select end_time, -1 from cron.job_run_details
    where start_time is not null and end_time is not null
)
select coalesce(max(c), 0)
from (select sum(d) over (order by t, d rows unbounded preceding) as c from ev) x
"""


def burst_once(
    dsn: str,
    size: int,
    rate: InsertRate,
    *,
    admin_dsn: str | None = None,
    logfile: Path | None = None,
    min_spread: float = 15.0,
    batch: int = 2000,
    margin: float = 5.0,
    timeout: float = 300.0,
    settle: float = 3.0,
) -> dict[str, Any]:
    """Insert ``size`` meetings through the triggers at once, ending in (M - spread, M] where M
    is the first usable minute tick; wait for the real pg_cron tick and measure until every
    meeting is done.

    The meetings are inserted as the role of ``dsn`` (the owner of public.meetings); cleaning
    and the counts run as ``admin_dsn`` (the superuser; ``dsn`` when not given). ``logfile``
    (the server's) is scanned for stack depth errors and crashes written during the burst."""
    with connect(admin_dsn or dsn) as admin, connect(dsn) as conn:
        clean(admin)
        log_start = log_offset(logfile)
        plan = plan_burst(size, rate, min_spread, margin)
        minute = plan.minute
        # Start now: the spread takes whatever time is left after the (estimated) insert, at
        # most 60 s, at least min_spread.
        left = (minute - utcnow()).total_seconds() - rate.estimate(size) - margin
        spread = max(1.0, min(60.0, left))
        spread_ms = int(spread * 1000)
        t0 = time.perf_counter()
        for offset in range(0, size, batch):
            count = min(batch, size - offset)
            # Row i ends (i * 7919 mod spread_ms) ms before M: spread over the window, M included.
            conn.execute(
                "insert into public.meetings (title, start_time, end_time) "
                "select 'burst', e - interval '30 minutes', e from ("
                "  select %s::timestamptz - ((i * 7919::bigint) %% %s) * interval '1 millisecond' e"
                "  from generate_series(%s::int, %s::int) i) s",
                (minute, spread_ms, offset, offset + count - 1),
            )
        insert_seconds = time.perf_counter() - t0
        rate.learn(size, insert_seconds)
        inserted_at = utcnow()
        upcoming, min_end = conn.execute(
            "select count(*), min(end_time) from public.meetings where status = 'upcoming'"
        ).fetchone()
        jobs = count_our_jobs(conn)
        runs_before = conn.execute("select count(*) from cron.job_run_details").fetchone()[0]
        log(
            f"burst {size}: inserted in {insert_seconds:.1f} s ({insert_seconds / size * 1e6:.0f} us/row), "
            f"{upcoming} upcoming, {jobs} jobs, spread {spread:.0f} s, fires at {minute:%H:%M:%S}"
        )
        result: dict[str, Any] = {
            "size": size,
            "minute": minute.isoformat(),
            "spread_s": spread,
            "insert_s": insert_seconds,
            "insert_us_per_row": insert_seconds / size * 1e6,
            "upcoming_after_insert": upcoming,
            "jobs_after_insert": jobs,
            "slack_s": (min_end - inserted_at).total_seconds() if min_end else None,
        }
        if upcoming != size:
            log(f"burst {size}: only {upcoming} of {size} upcoming after insert (insert overran)")
        # Poll from just before the tick until no meeting is upcoming.
        sleep_until(minute - dt.timedelta(seconds=1))
        done_at = None
        deadline = minute + dt.timedelta(seconds=timeout)
        max_running = 0
        while utcnow() < deadline:
            left_upcoming, running = admin.execute(
                "select (select count(*) from public.meetings where status = 'upcoming'), "
                f"(select count(*) from cron.job_run_details where {ACTIVE_RUN})"
            ).fetchone()
            max_running = max(max_running, running)
            if left_upcoming == 0:
                done_at = utcnow()
                break
            time.sleep(0.1)
        result["done_s"] = (done_at - minute).total_seconds() if done_at else None
        if done_at is None:
            result["left_upcoming"] = left_upcoming
        # Let pg_cron finish the runs it started (the pending runs of removed jobs are dropped).
        stable_since = time.perf_counter()
        last = None
        settle_deadline = time.perf_counter() + 120
        while time.perf_counter() < settle_deadline:
            total, active = admin.execute(
                f"select count(*), count(*) filter (where {ACTIVE_RUN}) from cron.job_run_details"
            ).fetchone()
            max_running = max(max_running, active)
            if (total, active) != last:
                last = (total, active)
                stable_since = time.perf_counter()
            elif active == 0 and time.perf_counter() - stable_since >= settle:
                break
            time.sleep(0.25)
        stats = conn.execute(
            """
            select count(*) filter (where bench_completed_at < end_time),
                   count(*) filter (where status = 'done'),
                   count(*) filter (where status = 'done' and bench_completed_at is null),
                   extract(epoch from max(bench_completed_at) - %(m)s),
                   extract(epoch from min(bench_completed_at) - %(m)s),
                   extract(epoch from max(bench_completed_at - end_time))
            from public.meetings
            """,
            {"m": minute},
        ).fetchone()
        runs = conn.execute(
            """
            select count(*),
                   count(*) filter (where status = 'succeeded'),
                   count(*) filter (where status = 'failed'),
                   extract(epoch from min(start_time) - %(m)s),
                   extract(epoch from max(end_time) - min(start_time))
            from cron.job_run_details
            """,
            {"m": minute},
        ).fetchone()
        failures = admin.execute(
            "select left(return_message, 1000), count(*) from cron.job_run_details "
            "where status = 'failed' group by 1 order by 2 desc limit 10"
        ).fetchall()
        max_overlap = admin.execute(MAX_OVERLAP_SQL).fetchone()[0]
        server_log = scan_log(logfile, log_start)
        # Transactions that completed something: distinct completion transactions.
        txns = conn.execute(
            "select count(distinct xmin::text) from public.meetings where bench_completed_at is not null"
        ).fetchone()[0]
        result.update(
            {
                "early": stats[0],
                "done": stats[1],
                "done_at_insert": stats[2],
                "last_completed_s": float(stats[3]) if stats[3] is not None else None,
                "first_completed_s": float(stats[4]) if stats[4] is not None else None,
                "max_lag_from_end_s": float(stats[5]) if stats[5] is not None else None,
                "run_details_added": runs[0] - runs_before,
                "runs_succeeded": runs[1],
                "runs_failed": runs[2],
                "first_run_start_s": float(runs[3]) if runs[3] is not None else None,
                "runs_span_s": float(runs[4]) if runs[4] is not None else None,
                "completing_transactions": txns,
                "jobs_left": count_our_jobs(conn),
                "failures": [[m, c] for m, c in failures],
                # failed runs other than the pending runs pg_cron drops when their job is removed
                "runs_failed_real": sum(c for m, c in failures if m != "job canceled"),
                "max_running_polled": max_running,
                "max_running_overlap": int(max_overlap),
                "log_stack_depth": server_log["stack_depth"],
                "log_stack_depth_autovacuum": server_log["stack_depth_autovacuum"],
                "log_crash": server_log["crash"],
                "log_errors": server_log["error"],
                "log_samples": server_log["samples"],
            }
        )
        if result["runs_span_s"]:
            result["runs_per_s"] = result["run_details_added"] / result["runs_span_s"]
        clean(admin)
    return result


# ------------------------------------------------------------------------- recovery / list


def _insert_without_triggers(conn: psycopg.Connection[Any], size: int) -> None:
    """``size`` upcoming meetings ending 3 to ~33 days ahead, inserted with triggers off (the
    caller vacuums the table afterwards, outside any transaction)."""
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(
            "insert into public.meetings (title, start_time, end_time) "
            "select 'recover', e - interval '1 hour', e from ("
            f"  select date_trunc('minute', now()) + {FAR_AHEAD} + i * interval '26 seconds' e"
            f"  from generate_series(1, {int(size)}) i) s"
        )


@contextlib.contextmanager
def reconcile_held(conn: Any) -> Iterator[None]:
    """The reconcile job held off meanwhile (it would register the jobs being measured): the row
    'repair' of scheduler.locks locked in a transaction of ``conn`` (revision 0009 on), or the
    advisory lock that earlier revisions skipped on."""
    if conn.execute("select to_regclass('scheduler.locks') is not null").fetchone()[0]:
        with conn.transaction():
            conn.execute("select 1 from scheduler.locks where name = 'repair' for update")
            yield
        return
    conn.execute("select pg_advisory_lock(hashtext('scheduler.repair'))")
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(hashtext('scheduler.repair'))")


def recovery_once(dsn: str, size: int, admin_dsn: str | None = None) -> dict[str, Any]:
    """``scheduler.recover()`` as the role of ``dsn`` (the owner of public.meetings) after
    ``size`` meetings were inserted with the triggers off (as ``admin_dsn``, the superuser:
    session_replication_role needs one)."""
    with connect(admin_dsn or dsn) as admin, connect(dsn) as conn:
        if not (
            function_exists(conn, "scheduler.recover(boolean)")
            or function_exists(conn, "scheduler.recover(boolean, text)")
        ):
            raise NotAvailable("scheduler.recover() does not exist in this checkout")
        clean(admin)
        # not the reconcile job meanwhile (it would register the jobs recover() is timed on)
        with reconcile_held(admin):
            _insert_without_triggers(admin, size)
        admin.execute("vacuum analyze public.meetings")
        jobs_before = count_our_jobs(conn)
        start = time.perf_counter()
        report = conn.execute("select scheduler.recover()").fetchone()[0]
        seconds = time.perf_counter() - start
        if isinstance(report, str):
            report = json.loads(report)
        jobs_after = count_our_jobs(conn)
        mismatched = conn.execute(
            "select count(*) from public.meetings m left join cron.job j "
            "on j.jobname = scheduler.job_name(m.id) "
            "where m.status = 'upcoming' and (j.jobid is null or j.schedule <> scheduler.cron_schedule(m.end_time))"
        ).fetchone()[0]
    return {
        "size": size,
        "seconds": seconds,
        "jobs_before": jobs_before,
        "jobs_after": jobs_after,
        "meetings_without_matching_job": mismatched,
        "report": {k: v for k, v in report.items() if k != "errors"}
        | {"errors": len(report.get("errors") or [])},
    }


def setup_jobs_directly(dsn: str, size: int, owner_dsn: str | None = None) -> float:
    """``size`` upcoming meetings with their jobs, made fast: meetings inserted with triggers off,
    then the jobs inserted into cron.job in one statement, copying the connection columns of a
    job made by cron.schedule as the owner of public.meetings (``owner_dsn``, else ``dsn``)
    (benchmark-only setup for the inspection scenario; ``dsn`` must be a superuser's)."""
    with connect(dsn) as conn, connect(owner_dsn or dsn) as owner:
        clean(conn)
        # the reconcile job would register the missing jobs meanwhile (and deadlock with the
        # insert below on the job names): hold the lock it skips on
        with reconcile_held(conn):
            _insert_without_triggers(conn, size)
            probe = f"meeting-status-{uuid.uuid4()}"
            owner.execute("select cron.schedule(%s, '0 0 1 1 *', 'select 1')", (probe,))
            conn.execute(
                """
                insert into cron.job (schedule, command, nodename, nodeport, database, username, active, jobname)
                select scheduler.cron_schedule(m.end_time), scheduler.job_command(m.id),
                       p.nodename, p.nodeport, p.database, p.username, true, scheduler.job_name(m.id)
                from public.meetings m, (select * from cron.job where jobname = %s) p
                where m.status = 'upcoming'
                """,
                (probe,),
            )
            owner.execute("select cron.unschedule(%s)", (probe,))
        conn.execute("vacuum analyze public.meetings")
        conn.execute("vacuum analyze cron.job")
        return float(count_our_jobs(conn))


def cli_command(database_url: str, order: int = 0) -> list[str]:
    base = [sys.executable, "-m", "scheduler_admin.cli"]
    if order == 0:
        return [*base, "list-jobs", "--json", "--database-url", database_url]
    return [*base, "--json", "--database-url", database_url, "list-jobs"]


def _count_jobs_in_output(doc: Any) -> int | None:
    if isinstance(doc, list):
        return len(doc)
    if isinstance(doc, dict):
        for key in ("jobs", "items", "data"):
            if isinstance(doc.get(key), list):
                return len(doc[key])
    return None


def inspection_probe(database_url: str) -> tuple[int, str]:
    """Which argument order the CLI accepts (0: as in the issue, 1: globals first)."""
    for order in (0, 1):
        proc = subprocess.run(
            cli_command(database_url, order), capture_output=True, text=True, cwd=REPO_ROOT,
            check=False, timeout=120,
        )  # fmt: skip
        if proc.returncode == 0:
            return order, ""
        last = proc.stderr.strip()[-400:]
    raise NotAvailable(f"scheduler-admin list-jobs --json failed: {last}")


def inspection_once(database_url: str, order: int) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run(
        cli_command(database_url, order), capture_output=True, text=True, cwd=REPO_ROOT,
        check=False, timeout=300,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"list-jobs failed ({proc.returncode}): {proc.stderr[-400:]}")
    doc = json.loads(proc.stdout)
    return {
        "seconds": seconds,
        "jobs_listed": _count_jobs_in_output(doc),
        "bytes": len(proc.stdout),
    }


def python_startup(order: int) -> float:
    """Wall time of ``python -m scheduler_admin.cli --help`` (interpreter and imports only)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "scheduler_admin.cli", "--help"], capture_output=True, cwd=REPO_ROOT,
        check=False, timeout=120,
    )  # fmt: skip
    return time.perf_counter() - start


def list_jobs_sql_time(dsn: str) -> float:
    """Time of ``select * from scheduler.list_jobs()`` (the query under list-jobs) from Python."""
    with connect(dsn) as conn:
        if function_exists(conn, "scheduler.list_jobs()"):
            start = time.perf_counter()
            conn.execute("select * from scheduler.list_jobs()").fetchall()
            return time.perf_counter() - start
        start = time.perf_counter()
        conn.execute(
            "select j.jobid, j.jobname, j.schedule, j.command, j.active, m.end_time, m.status "
            "from cron.job j left join public.meetings m on m.id = scheduler.meeting_id(j.jobname) "
            "where j.jobname ~ %s",
            (JOB_PATTERN,),
        ).fetchall()
        return time.perf_counter() - start


# --------------------------------------------------------------------------------- anchor


def anchor_once(dsn: str, size: int, mode: str, spread: str, timeout: float) -> dict[str, Any]:
    """Run benchmarks.anchor_apscheduler in its own process (its own GIL and threads)."""
    cmd = [
        sys.executable, "-m", "benchmarks.anchor_apscheduler", "--dsn", dsn, "--size", str(size),
        "--mode", mode, "--spread", spread, "--timeout", str(timeout), "--json",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=timeout + 600
    )
    if proc.returncode == 3:
        raise NotAvailable(proc.stderr.strip()[-300:])
    if proc.returncode != 0:
        raise RuntimeError(f"anchor failed ({proc.returncode}): {proc.stderr[-800:]}")
    return json.loads(proc.stdout)
