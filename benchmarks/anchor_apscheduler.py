"""The anchor: the original service's mechanism on the same burst.

APScheduler 3.11 (``pip install "apscheduler>=3.11,<4"``), a BackgroundScheduler with a
SQLAlchemy job store on SQLite and the default executor (a pool of 10 threads), one DateTrigger
job per meeting; each job marks one meeting done with one UPDATE through psycopg. The meetings
live in ``bench.anchor_meetings`` of the same throwaway PostgreSQL (no triggers of ours).

Modes: ``default`` keeps APScheduler's defaults (misfire_grace_time = 1 s, coalesce, max
instances 1): a job that waits more than 1 s for a worker thread is reported missed and its
meeting stays upcoming. ``no-grace`` sets misfire_grace_time = None (never missed).

Spreads: ``instant``: every meeting ends at the same instant (meetings that end "on the hour");
``minute``: end times spread over the 60 s before that instant, like the pg_cron burst.

Run alone: ``python -m benchmarks.anchor_apscheduler --dsn DSN --size 2000 --mode default``.
Exit status 3 when APScheduler is not installed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any

import psycopg

UTC = dt.timezone.utc
FUNC_REF = "benchmarks.anchor_apscheduler:complete_meeting"

_local = threading.local()


def complete_meeting(dsn: str, meeting_id: str) -> None:
    """The job: one UPDATE through psycopg (one connection per worker thread, reused)."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(dsn, autocommit=True)
        _local.conn = conn
    conn.execute(
        "update bench.anchor_meetings set status = 'done', completed_at = clock_timestamp() "
        "where id = %s and status = 'upcoming'",
        (meeting_id,),
    )


def prepare_table(
    dsn: str, size: int, due: dt.datetime, spread_s: float
) -> list[tuple[str, dt.datetime]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create schema if not exists bench")
        conn.execute("drop table if exists bench.anchor_meetings")
        conn.execute(
            "create table bench.anchor_meetings (id uuid primary key default gen_random_uuid(), "
            "end_time timestamptz not null, status text not null default 'upcoming', "
            "completed_at timestamptz)"
        )
        spread_ms = max(1, int(spread_s * 1000))
        rows = conn.execute(
            "insert into bench.anchor_meetings (end_time) "
            "select %s::timestamptz - ((i * 7919::bigint) %% %s) * interval '1 millisecond' "
            "from generate_series(0, %s) i returning id::text, end_time",
            (due, spread_ms, size - 1),
        ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def calibrate_add_rate(scheduler_cls: Any, store_cls: Any, jobs: int = 60) -> float:
    workdir = tempfile.mkdtemp(prefix="anchor-calibrate-")
    path = os.path.join(workdir, "jobs.sqlite")
    scheduler = scheduler_cls(
        jobstores={"default": store_cls(url=f"sqlite:///{path}")}, timezone=UTC
    )
    scheduler.start(paused=True)
    later = dt.datetime.now(UTC) + dt.timedelta(days=1)
    start = time.perf_counter()
    for i in range(jobs):
        scheduler.add_job(FUNC_REF, "date", run_date=later, args=["", str(i)], id=f"calibrate_{i}")
    rate = (time.perf_counter() - start) / jobs
    scheduler.shutdown(wait=False)
    os.remove(path)
    os.rmdir(workdir)
    return rate


def run(
    dsn: str, size: int, mode: str, spread: str, timeout: float, add_rate: float
) -> dict[str, Any]:
    try:
        import apscheduler
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler
    except ImportError as exc:
        print(
            f"APScheduler is not installed: {exc} (pip install 'apscheduler>=3.11,<4')",
            file=sys.stderr,
        )
        sys.exit(3)

    spread_s = 60.0 if spread == "minute" else 0.0
    # Adding a job to the SQLite store costs a commit (milliseconds): calibrate on a scratch
    # store, then plan the due instant after the (pessimistic) end of adding.
    if add_rate <= 0:
        add_rate = calibrate_add_rate(BackgroundScheduler, SQLAlchemyJobStore)
    est_add = size * add_rate * 1.5 + 3.0
    due = dt.datetime.now(UTC) + dt.timedelta(seconds=est_add + spread_s + 3.0)
    due = due.replace(microsecond=0) + dt.timedelta(seconds=1)
    meetings = prepare_table(dsn, size, due, spread_s)

    workdir = tempfile.mkdtemp(prefix="anchor-apscheduler-")
    store_path = os.path.join(workdir, "jobs.sqlite")
    job_defaults: dict[str, Any] = {}
    if mode == "no-grace":
        job_defaults["misfire_grace_time"] = None
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{store_path}")},
        job_defaults=job_defaults,
        timezone=UTC,
    )
    counts = {"executed": 0, "missed": 0, "error": 0}
    lock = threading.Lock()

    def listener(event: Any) -> None:
        with lock:
            if event.code == EVENT_JOB_EXECUTED:
                counts["executed"] += 1
            elif event.code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            elif event.code == EVENT_JOB_ERROR:
                counts["error"] += 1

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    scheduler.start()
    t0 = time.perf_counter()
    for meeting_id, end_time in meetings:
        scheduler.add_job(
            FUNC_REF, "date", run_date=end_time, args=[dsn, meeting_id],
            id=f"meeting_status_{meeting_id}", replace_existing=True,
        )  # fmt: skip
    add_seconds = time.perf_counter() - t0
    added_at = dt.datetime.now(UTC)
    overran = added_at >= due - dt.timedelta(seconds=spread_s)
    if overran:
        print("warning: adding jobs overran the first due time", file=sys.stderr)

    deadline = due + dt.timedelta(seconds=timeout)
    finished_at = None
    while dt.datetime.now(UTC) < deadline:
        with lock:
            processed = counts["executed"] + counts["missed"] + counts["error"]
        if processed >= size:
            finished_at = dt.datetime.now(UTC)
            break
        time.sleep(0.05)
    scheduler.shutdown(wait=True)

    with psycopg.connect(dsn, autocommit=True) as conn:
        done, early, last, max_lag = conn.execute(
            "select count(*) filter (where status = 'done'), "
            "count(*) filter (where completed_at < end_time), "
            "extract(epoch from max(completed_at) - %s), "
            "extract(epoch from max(completed_at - end_time)) from bench.anchor_meetings",
            (due,),
        ).fetchone()
        conn.execute("drop table bench.anchor_meetings")
    os.remove(store_path)
    os.rmdir(workdir)
    return {
        "apscheduler": apscheduler.__version__,
        "size": size,
        "mode": mode,
        "spread": spread,
        "misfire_grace_time": "None" if mode == "no-grace" else "1 s (default)",
        "add_seconds": add_seconds,
        "add_us_per_job": add_seconds / size * 1e6,
        "add_overran_due": overran,
        "slack_s": (due - dt.timedelta(seconds=spread_s) - added_at).total_seconds(),
        "executed": counts["executed"],
        "missed": counts["missed"],
        "errors": counts["error"],
        "done": done,
        "lost": size - done,
        "early": early,
        # Seconds from the due instant (the last end time) until the last meeting was done.
        "done_s": float(last) if last is not None and done == size else None,
        "last_update_s": float(last) if last is not None else None,
        "processed_s": (finished_at - due).total_seconds() if finished_at else None,
        "max_lag_from_end_s": float(max_lag) if max_lag is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="libpq connection string of the PostgreSQL")
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--mode", choices=["default", "no-grace"], default="default")
    parser.add_argument("--spread", choices=["instant", "minute"], default="instant")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--add-rate", type=float, default=0.0,
                        help="seconds per add_job to plan the due instant (0: calibrate)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.dsn, args.size, args.mode, args.spread, args.timeout, args.add_rate)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
