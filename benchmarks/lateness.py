"""Lateness: when a meeting becomes done, per configuration, side by side in one run.

``--size`` meetings (default 1,000) with end times spread at random over the next ``--spread``
seconds (default 180; random milliseconds, never on a minute boundary; ``--seed`` fixes them),
inserted at once, the first end time a few seconds ahead (the BEFORE trigger completes a meeting
inserted with an end time already past). Per meeting, lateness = when it became done - its
``end_time``; reported as p50 / p99 / max, the count done early (lateness < 0) and the count not
done within spread + 90 s. Configurations (``--only`` picks some):

* ``pgcron14``: PostgreSQL with pg_cron 1.4 (local binaries), no application: the per-meeting
  jobs only (no seconds sweep on 1.4).
* ``sweep``: PostgreSQL 17 with pg_cron 1.6 in the container lane (``container_cluster``), no
  application: the per-meeting jobs and the seconds sweep (``sweep_seconds`` left at 1).
* ``waker-pg``: pg_cron 1.4 (local binaries) and the waker running in this process
  (``Waker.from_settings(config.resolve(url))``: LISTEN/NOTIFY on a direct connection).
* ``waker-sqlite``: a temporary SQLite file migrated with ``scheduler_admin.migrate.upgrade``,
  the emulated pg_cron worker (``CronWorker``) and the waker running in this process.
* ``apscheduler``: the anchor (``benchmarks/anchor_apscheduler.py``): APScheduler 3
  ``BackgroundScheduler``, SQLite job store, one ``DateTrigger`` job per meeting with
  APScheduler's default misfire settings (``misfire_grace_time`` 1 s, coalesce), each job marking
  its meeting of ``bench.anchor_meetings`` (a PostgreSQL table without our triggers) done.

When a meeting became done: PostgreSQL: ``updated_at``, which completion sets to ``now()``
(``scheduler.complete_due`` in ``sql/postgres/20_functions.sql``; the start of the completing
transaction, at or after ``end_time`` since only ``end_time <= now()`` is completed); SQLite:
``updated_at`` (ISO-8601 UTC text, milliseconds) set by the twin of ``complete_due``; the anchor:
``completed_at = clock_timestamp()`` set by its job.

Run: ``python -m benchmarks.lateness [--size 1000 --spread 180 --seed 1] [--output FILE]``.
The table goes to stdout, progress to stderr, raw numbers to ``benchmarks/out/lateness.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DURABLE_SETTINGS,
    REPO_ROOT,
    benchmark_cluster,
    connect,
    log,
    machine_description,
    migrate,
    utcnow,
)

UTC = dt.timezone.utc
CONFIGS = ("pgcron14", "sweep", "waker-pg", "waker-sqlite", "apscheduler")
LABELS = {
    "pgcron14": "pg_cron 1.4 alone (per-meeting jobs, no application)",
    "sweep": "pg_cron >= 1.5 with the sweep (no application)",
    "waker-pg": "waker on direct PostgreSQL (pg_cron 1.4)",
    "waker-sqlite": "waker on SQLite (with CronWorker)",
    "apscheduler": "APScheduler 3 anchor (default misfire settings)",
}
# (p99 bound in seconds, what the table says); every configuration: never early, all done.
TARGETS: dict[str, tuple[float | None, str]] = {
    "pgcron14": (60.0, "early 0; p99 and max <= 60 s"),
    "sweep": (2.0, "early 0; p99 <= 2 s"),
    "waker-pg": (0.2, "early 0; p99 <= 0.2 s"),
    "waker-sqlite": (0.2, "early 0; p99 <= 0.2 s"),
    "apscheduler": (None, "early 0 (reference)"),
}
LEAD_S = 8.0  # the first end time is at least this far after the insert starts
GRACE_S = 90.0  # a meeting not done within spread + this after the start counts as not done
POLL_S = 0.5
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "out" / "lateness.json"


# -- end times ------------------------------------------------------------------------------------


def offsets(size: int, spread: float, seed: int) -> list[float]:
    """Seconds after the start instant, milliseconds at random, sorted; the same for every
    configuration of a run."""
    rng = random.Random(seed)
    span_ms = max(1, int(spread * 1000))
    return sorted(rng.randrange(0, span_ms) / 1000.0 for _ in range(size))


def end_times(start: dt.datetime, offs: Sequence[float]) -> list[dt.datetime]:
    """``start`` (a whole second) plus each offset; an end time that falls on a minute boundary
    moves 1 ms later (pg_cron's schedule would then be that very minute)."""
    out = []
    for off in offs:
        when = start + dt.timedelta(milliseconds=round(off * 1000))
        if when.second == 0 and when.microsecond == 0:
            when += dt.timedelta(milliseconds=1)
        out.append(when)
    return out


def start_instant(lead: float) -> dt.datetime:
    return (utcnow() + dt.timedelta(seconds=lead)).replace(microsecond=0) + dt.timedelta(seconds=1)


# -- statistics -----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(
    config: str, pairs: Sequence[tuple[dt.datetime, dt.datetime | None]], size: int
) -> dict[str, Any]:
    """Lateness figures from (end_time, done_at or None) pairs."""
    lateness = sorted((done - end).total_seconds() for end, done in pairs if done is not None)
    not_done = size - len(lateness)
    early = sum(1 for x in lateness if x < 0)
    p99 = percentile(lateness, 99)
    bound, text = TARGETS[config]
    met = early == 0 and not_done == 0 and bool(lateness)
    if bound is not None and met:
        assert p99 is not None
        met = p99 <= bound and (config != "pgcron14" or lateness[-1] <= bound)
    return {
        "done": len(lateness),
        "not_done": not_done,
        "early": early,
        "p50_s": percentile(lateness, 50),
        "p90_s": percentile(lateness, 90),
        "p99_s": p99,
        "max_s": lateness[-1] if lateness else None,
        "min_s": lateness[0] if lateness else None,
        "mean_s": sum(lateness) / len(lateness) if lateness else None,
        "target": text,
        "met": met,
    }


# -- waiting ----------------------------------------------------------------------------------------


def wait_done(count_pending: Callable[[], int], deadline: dt.datetime) -> dt.datetime | None:
    """Poll until nothing is pending (returns when) or the deadline passes (returns None)."""
    while True:
        if count_pending() == 0:
            return utcnow()
        if utcnow() >= deadline:
            return None
        time.sleep(POLL_S)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# -- PostgreSQL configurations ----------------------------------------------------------------------


def pg_versions(dsn: str) -> tuple[str, str]:
    with connect(dsn) as conn:
        server = conn.execute("show server_version").fetchone()
        cron = conn.execute(
            "select extversion from pg_extension where extname = 'pg_cron'"
        ).fetchone()
    return (str(server[0]).split()[0] if server else "?", str(cron[0]) if cron else "?")


def run_pg_meetings(
    dsn: str, offs: Sequence[float], spread: float, *, extra: dict[str, Any]
) -> dict[str, Any]:
    """Insert the meetings into public.meetings (through our triggers), wait, read lateness."""
    start = start_instant(LEAD_S)
    ends = end_times(start, offs)
    deadline = start + dt.timedelta(seconds=spread + GRACE_S)
    with connect(dsn) as conn:
        t0 = time.perf_counter()
        conn.execute(
            "insert into public.meetings (title, end_time) "
            "select 'lateness ' || i, e from unnest(%s::timestamptz[]) with ordinality as t(e, i)",
            (ends,),
        )
        insert_s = time.perf_counter() - t0
        first_left = (ends[0] - utcnow()).total_seconds()
        log(
            f"  inserted {len(ends)} meetings in {insert_s:.3f} s; first ends in {first_left:.1f} s"
        )
        early_done = conn.execute(
            "select count(*) from public.meetings where status <> 'upcoming'"
        ).fetchone()

        def pending() -> int:
            row = conn.execute(
                "select count(*) from public.meetings where status = 'upcoming'"
            ).fetchone()
            return int(row[0]) if row else 0

        finished = wait_done(pending, deadline)
        rows = conn.execute(
            "select end_time, case when status = 'done' then updated_at end from public.meetings"
        ).fetchall()
        jobs_left = conn.execute(
            "select count(*) from cron.job where jobname like 'meeting-status-%%' "
            "and jobname <> 'meeting-status-sweep' and jobname <> 'meeting-status-reconcile'"
        ).fetchone()
    extra.update(
        {
            "start": start.isoformat(),
            "insert_s": insert_s,
            "first_end_after_insert_s": first_left,
            "done_at_insert": int(early_done[0]) if early_done else None,
            "all_done_after_start_s": (finished - start).total_seconds() if finished else None,
            "meeting_jobs_left": int(jobs_left[0]) if jobs_left else None,
        }
    )
    return {"pairs": [(r[0], r[1]) for r in rows]}


def cron_jobs(dsn: str) -> list[dict[str, str]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "select jobname, schedule from cron.job where jobname !~ '^meeting-status-[0-9a-f-]{36}$'"
        ).fetchall()
    return [{"jobname": str(r[0]), "schedule": str(r[1])} for r in rows]


def run_pgcron14(offs: Sequence[float], spread: float) -> dict[str, Any]:
    with benchmark_cluster() as (cluster, _settings):
        dsn = cluster.dsn()
        migrate(dsn)
        server, cron = pg_versions(dsn)
        extra: dict[str, Any] = {"server": f"PostgreSQL {server}, pg_cron {cron}"}
        extra["jobs"] = cron_jobs(dsn)
        out = run_pg_meetings(dsn, offs, spread, extra=extra)
    return {**out, **extra}


def run_sweep(offs: Sequence[float], spread: float) -> dict[str, Any]:
    from scheduler_admin.testing.cluster import ClusterError
    from scheduler_admin.testing.container import container_cluster

    try:
        ctx = container_cluster(settings=DURABLE_SETTINGS)
        cluster = ctx.__enter__()
    except (ClusterError, Exception) as exc:
        return {"unavailable": f"Docker or the image is unavailable: {exc}"}
    try:
        dsn = cluster.dsn()
        migrate(dsn)
        server, cron = pg_versions(dsn)
        extra: dict[str, Any] = {"server": f"PostgreSQL {server}, pg_cron {cron} (container)"}
        with connect(dsn) as conn:
            row = conn.execute("select sweep_seconds from scheduler.settings").fetchone()
        extra["sweep_seconds"] = row[0] if row else None
        extra["jobs"] = cron_jobs(dsn)
        log(
            f"  jobs besides the meetings': {extra['jobs']}; sweep_seconds={extra['sweep_seconds']}"
        )
        out = run_pg_meetings(dsn, offs, spread, extra=extra)
    finally:
        ctx.__exit__(None, None, None)
    return {**out, **extra}


@contextlib.contextmanager
def running_waker(url: str) -> Iterator[Any]:
    from scheduler_admin import config
    from scheduler_admin.waker import Waker

    waker = Waker.from_settings(config.resolve(url))
    waker.start_thread()
    try:
        time.sleep(1.0)  # its first wake() and, on PostgreSQL, its LISTEN before the insert
        yield waker
    finally:
        waker.stop()


def run_waker_pg(offs: Sequence[float], spread: float) -> dict[str, Any]:
    with benchmark_cluster() as (cluster, _settings):
        dsn = cluster.dsn()
        migrate(dsn)
        server, cron = pg_versions(dsn)
        extra: dict[str, Any] = {"server": f"PostgreSQL {server}, pg_cron {cron}"}
        with running_waker(cluster.url()) as waker:
            out = run_pg_meetings(dsn, offs, spread, extra=extra)
            extra.update({"waker_completed": waker.completed, "waker_cycles": waker.cycles})
    return {**out, **extra}


# -- SQLite -----------------------------------------------------------------------------------------


def run_waker_sqlite(offs: Sequence[float], spread: float) -> dict[str, Any]:
    from scheduler_admin.backends.sqlite import SqliteBackend
    from scheduler_admin.migrate import upgrade
    from scheduler_admin.sqlite.connection import from_db_time
    from scheduler_admin.sqlite.worker import CronWorker

    workdir = Path(tempfile.mkdtemp(prefix="lateness-sqlite-"))
    path = workdir / "scheduler.db"
    url = f"sqlite:///{path}"
    upgrade(url=url)
    extra: dict[str, Any] = {"server": f"SQLite {sqlite3.sqlite_version} (CronWorker + waker)"}
    worker = CronWorker(SqliteBackend(url))
    worker.start_thread()
    try:
        with running_waker(url) as waker:
            start = start_instant(LEAD_S)
            ends = end_times(start, offs)
            deadline = start + dt.timedelta(seconds=spread + GRACE_S)
            t0 = time.perf_counter()
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
                with conn:
                    conn.executemany(
                        "insert into meetings (title, end_time) values (?, ?)",
                        [(f"lateness {i}", e.isoformat()) for i, e in enumerate(ends)],
                    )
                insert_s = time.perf_counter() - t0
                first_left = (ends[0] - utcnow()).total_seconds()
                log(
                    f"  inserted {len(ends)} meetings in {insert_s:.3f} s; "
                    f"first ends in {first_left:.1f} s"
                )

                def pending() -> int:
                    row = conn.execute(
                        "select count(*) from meetings where status = 'upcoming'"
                    ).fetchone()
                    return int(row[0]) if row else 0

                finished = wait_done(pending, deadline)
                rows = conn.execute("select end_time, status, updated_at from meetings").fetchall()
            extra.update({"waker_completed": waker.completed, "waker_cycles": waker.cycles})
    finally:
        worker.stop()
    pairs = []
    for end_text, status, updated in rows:
        end = from_db_time(end_text)
        assert end is not None
        pairs.append((end, from_db_time(updated) if status == "done" else None))
    extra.update(
        {
            "start": start.isoformat(),
            "insert_s": insert_s,
            "first_end_after_insert_s": first_left,
            "all_done_after_start_s": (finished - start).total_seconds() if finished else None,
        }
    )
    with contextlib.suppress(OSError):
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()
    return {"pairs": pairs, **extra}


# -- the APScheduler anchor -------------------------------------------------------------------------


def run_apscheduler(offs: Sequence[float], spread: float) -> dict[str, Any]:
    try:
        import apscheduler
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler
    except ImportError as exc:
        return {
            "unavailable": f"APScheduler is not installed ({exc}); "
            "pip install 'apscheduler>=3.11,<4'"
        }
    from benchmarks.anchor_apscheduler import FUNC_REF, calibrate_add_rate

    with benchmark_cluster() as (cluster, _settings):
        dsn = cluster.dsn()
        server, _cron = pg_versions(dsn)
        extra: dict[str, Any] = {
            "server": f"APScheduler {apscheduler.__version__}, PostgreSQL {server}",
            "misfire_grace_time": "1 s (default)",
            "coalesce": "True (default)",
            "executor": "default (thread pool of 10)",
        }
        add_rate = calibrate_add_rate(BackgroundScheduler, SQLAlchemyJobStore)
        lead = LEAD_S + len(offs) * add_rate * 1.5
        with connect(dsn) as conn:
            conn.execute("create schema if not exists bench")
            conn.execute(
                "create table bench.anchor_meetings (id uuid primary key "
                "default gen_random_uuid(), end_time timestamptz not null, "
                "status text not null default 'upcoming', completed_at timestamptz)"
            )
            start = start_instant(lead)
            ends = end_times(start, offs)
            rows = conn.execute(
                "insert into bench.anchor_meetings (end_time) select e "
                "from unnest(%s::timestamptz[]) as t(e) returning id::text, end_time",
                (ends,),
            ).fetchall()
        workdir = Path(tempfile.mkdtemp(prefix="lateness-apscheduler-"))
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{workdir / 'jobs.sqlite'}")},
            timezone=UTC,
        )
        counts = {"executed": 0, "missed": 0, "job_errors": 0}

        def listener(event: Any) -> None:
            if event.code == EVENT_JOB_EXECUTED:
                counts["executed"] += 1
            elif event.code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            elif event.code == EVENT_JOB_ERROR:
                counts["job_errors"] += 1

        scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        scheduler.start()
        t0 = time.perf_counter()
        for meeting_id, end_time in rows:
            scheduler.add_job(
                FUNC_REF, "date", run_date=end_time, args=[dsn, meeting_id],
                id=f"meeting_status_{meeting_id}", replace_existing=True,
            )  # fmt: skip
        add_s = time.perf_counter() - t0
        first_left = (ends[0] - utcnow()).total_seconds()
        log(f"  added {len(rows)} jobs in {add_s:.2f} s; first ends in {first_left:.1f} s")
        deadline = start + dt.timedelta(seconds=spread + GRACE_S)
        with connect(dsn) as conn:

            def pending() -> int:
                row = conn.execute(
                    "select count(*) from bench.anchor_meetings where status = 'upcoming'"
                ).fetchone()
                return int(row[0]) if row else 0

            finished = wait_done(pending, deadline)
            scheduler.shutdown(wait=True)
            done_rows = conn.execute(
                "select end_time, completed_at from bench.anchor_meetings"
            ).fetchall()
        with contextlib.suppress(OSError):
            for leftover in workdir.iterdir():
                leftover.unlink()
            workdir.rmdir()
    extra.update(
        {
            "start": start.isoformat(),
            "add_s": add_s,
            "first_end_after_insert_s": first_left,
            "all_done_after_start_s": (finished - start).total_seconds() if finished else None,
            **counts,
        }
    )
    return {"pairs": [(r[0], r[1]) for r in done_rows], **extra}


RUNNERS: dict[str, Callable[[Sequence[float], float], dict[str, Any]]] = {
    "pgcron14": run_pgcron14,
    "sweep": run_sweep,
    "waker-pg": run_waker_pg,
    "waker-sqlite": run_waker_sqlite,
    "apscheduler": run_apscheduler,
}


# -- report -----------------------------------------------------------------------------------------


def fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| Configuration | Server / pg_cron | p50 (s) | p99 (s) | max (s) | early | not done "
        "| Target | Met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for config, res in results.items():
        if "unavailable" in res or "error" in res:
            why = res.get("unavailable") or f"failed: {res['error']}"
            lines.append(
                f"| {LABELS[config]} | {why} | - | - | - | - | - | {TARGETS[config][1]} | not run |"
            )
            continue
        met = "yes" if res["met"] else "**NO**"
        lines.append(
            f"| {LABELS[config]} | {res.get('server', '?')} | {fmt_s(res['p50_s'])} | "
            f"{fmt_s(res['p99_s'])} | {fmt_s(res['max_s'])} | {res['early']} | "
            f"{res['not_done']} | {res['target']} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="meetings per configuration")
    parser.add_argument("--spread", type=float, default=180.0,
                        help="seconds over which the end times are spread")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default=",".join(CONFIGS),
                        help=f"comma-separated subset of {','.join(CONFIGS)}")  # fmt: skip
    parser.add_argument("--output", type=Path, help="append the table to this markdown file")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT, help="raw numbers")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CONFIGS]
    if unknown:
        parser.error(
            f"unknown configuration(s) {', '.join(unknown)}; expected {', '.join(CONFIGS)}"
        )

    offs = offsets(args.size, args.spread, args.seed)
    started = utcnow()
    run_info: dict[str, Any] = {
        "started": started.isoformat(),
        "argv": sys.argv[1:] if argv is None else argv,
        "size": args.size,
        "spread_s": args.spread,
        "seed": args.seed,
        "lead_s": LEAD_S,
        "grace_s": GRACE_S,
        "machine": machine_description(),
        "load_start": loadavg(),
    }
    results: dict[str, dict[str, Any]] = {}
    for config in chosen:
        log(f"{config}: {LABELS[config]}")
        load_before = loadavg()
        t0 = time.perf_counter()
        try:
            res = RUNNERS[config](offs, args.spread)
        except Exception as exc:  # report the row, run the others
            log(f"  failed: {type(exc).__name__}: {exc}")
            res = {"error": f"{type(exc).__name__}: {exc}"}
        res["load_before"], res["load_after"] = load_before, loadavg()
        res["wall_s"] = time.perf_counter() - t0
        pairs = res.pop("pairs", None)
        if pairs is not None:
            res.update(summarize(config, pairs, args.size))
            res["lateness_s"] = sorted((d - e).total_seconds() for e, d in pairs if d is not None)
            log(
                f"  p50 {fmt_s(res['p50_s'])} s, p99 {fmt_s(res['p99_s'])} s, "
                f"max {fmt_s(res['max_s'])} s, early {res['early']}, not done {res['not_done']}"
            )
        elif "unavailable" in res:
            log(f"  skipped: {res['unavailable']}")
        results[config] = res
    run_info["load_end"] = loadavg()
    run_info["finished"] = utcnow().isoformat()

    text = table(results)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": run_info, "results": results}, indent=2, default=str))
    log(f"raw numbers in {args.json}")
    if args.output:
        header = (
            f"\nRun {started:%Y-%m-%d %H:%M} UTC: `python -m benchmarks.lateness "
            f"{' '.join(run_info['argv'])}`; load average (1/5/15 min) "
            f"{'/'.join(map(str, run_info['load_start']))} at the start, "
            f"{'/'.join(map(str, run_info['load_end']))} at the end.\n\n"
        )
        with args.output.open("a") as f:
            f.write(header + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
