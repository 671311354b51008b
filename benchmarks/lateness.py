"""Lateness: when a meeting becomes done, per configuration, side by side in one run.

``--size`` meetings (default 1,000) with end times spread at random over the next ``--spread``
seconds (default 180; random milliseconds, never on a minute boundary; ``--seed`` fixes them),
inserted at once, the first end time a few seconds ahead (the BEFORE trigger completes a meeting
inserted with an end time already past). Per meeting, lateness = when it became done - its
``end_time``; reported as p50 / p99 / max, the count done early (lateness < 0) and the count not
done within spread + 90 s; on PostgreSQL also the meetings completed more than once (more than
one completion event). Configurations (``--only`` picks some):

* ``pgcron14``: PostgreSQL with pg_cron 1.4 (local binaries), no application: the per-meeting
  jobs only (no seconds sweep on 1.4).
* ``sweep``: PostgreSQL 17 with pg_cron 1.6 in the container lane (``container_cluster``), no
  application: the per-meeting jobs and the seconds sweep (``sweep_seconds`` left at 1).
* ``waker-pg``: pg_cron 1.4 (local binaries) and the waker running in this process
  (``Waker.from_settings(config.resolve(url))``: LISTEN/NOTIFY on a direct connection).
* ``waker-pg3``: pg_cron 1.4 (local binaries) and three waker processes (``--child-waker``), as
  three application instances: one elected on the lease of revision 0012 calls ``wake()``, with
  no random delay; the other two stand by.
* ``waker-pg3-jitter``: the same three processes as before revision 0012 (``elect=False``,
  ``jitter`` 0.1 s): every one calls ``wake()`` after a random 0-100 ms delay.
* ``waker-pg3-kill``: ``waker-pg3``, and the active process is killed (SIGKILL: no release,
  its connection dropped) half-way through the spread; a standby takes the lease over. The
  takeover (the new lease's ``acquired_at`` - the kill, by the server's clock) is reported.
* ``waker-rest``: the Supabase shape (``shape_cluster("supabase")``) behind the PostgREST
  stand-in of the tests (``tests/supabase/postgrest_adapter.py``, RPC as service_role), one
  waker in this process re-polling ``wake()`` every 2 s (``REST_POLL``), as the application runs
  it over ``SUPABASE_URL``.
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
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
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
    shape_cluster,
    utcnow,
)

UTC = dt.timezone.utc
CONFIGS = (
    "pgcron14",
    "sweep",
    "waker-pg",
    "waker-pg3",
    "waker-pg3-jitter",
    "waker-pg3-kill",
    "waker-rest",
    "waker-sqlite",
    "apscheduler",
)
LABELS = {
    "pgcron14": "pg_cron 1.4 alone (per-meeting jobs, no application)",
    "sweep": "pg_cron >= 1.5 with the sweep (no application)",
    "waker-pg": "waker on direct PostgreSQL (pg_cron 1.4)",
    "waker-pg3": "three wakers, one elected, direct PostgreSQL",
    "waker-pg3-jitter": "three wakers, none elected, 0-100 ms delay (before 0012)",
    "waker-pg3-kill": "three wakers, one elected, the active one killed mid-run",
    "waker-rest": "waker over Supabase REST (RPC re-poll every 2 s)",
    "waker-sqlite": "waker on SQLite (with CronWorker)",
    "apscheduler": "APScheduler 3 anchor (default misfire settings)",
}
# (p99 bound in seconds, what the table says); every configuration: never early, all done.
TARGETS: dict[str, tuple[float | None, str]] = {
    "pgcron14": (60.0, "early 0; p99 and max <= 60 s"),
    "sweep": (2.0, "early 0; p99 <= 2 s"),
    "waker-pg": (0.2, "early 0; p99 <= 0.2 s"),
    "waker-pg3": (0.020, "early 0; p50 <= 5 ms, p99 <= 20 ms; 0 double"),
    "waker-pg3-jitter": (0.2, "early 0; p99 <= 0.2 s; 0 double (reference)"),
    "waker-pg3-kill": (None, "early 0; max <= 3 s; 0 double"),
    "waker-rest": (2.5, "early 0; p99 <= 2.5 s (the 2 s poll)"),
    "waker-sqlite": (0.2, "early 0; p99 <= 0.2 s"),
    "apscheduler": (None, "early 0 (reference)"),
}
# further bounds: p50 and max (seconds)
P50_BOUNDS = {"waker-pg3": 0.005}
MAX_BOUNDS = {"pgcron14": 60.0, "waker-pg3-kill": 3.0}
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
    config: str,
    pairs: Sequence[tuple[dt.datetime, dt.datetime | None]],
    size: int,
    double: int | None = None,
) -> dict[str, Any]:
    """Lateness figures from (end_time, done_at or None) pairs; ``double``: the meetings
    completed more than once (None: not counted)."""
    lateness = sorted((done - end).total_seconds() for end, done in pairs if done is not None)
    not_done = size - len(lateness)
    early = sum(1 for x in lateness if x < 0)
    p99 = percentile(lateness, 99)
    bound, text = TARGETS[config]
    met = early == 0 and not_done == 0 and bool(lateness) and not double
    if bound is not None and met:
        assert p99 is not None
        met = p99 <= bound
    p50 = percentile(lateness, 50)
    if met and config in P50_BOUNDS:
        met = p50 is not None and p50 <= P50_BOUNDS[config]
    if met and config in MAX_BOUNDS:
        met = lateness[-1] <= MAX_BOUNDS[config]
    return {
        "done": len(lateness),
        "not_done": not_done,
        "early": early,
        "double": double,
        "p50_s": p50,
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


def double_completions(dsn: str) -> int:
    """Meetings with more than one completion event: completed twice."""
    with connect(dsn) as conn:
        row = conn.execute(
            "select count(*) from (select meeting_id from scheduler.completion_events "
            "where meeting_id is not null group by meeting_id having count(*) > 1) d"
        ).fetchone()
    return int(row[0]) if row else 0


CHILD_MODES = ("elected", "jittered")


def child_waker(url: str, mode: str) -> int:
    """One waker process (``--child-waker URL``), as an application instance runs it, until
    SIGTERM; then its counts as one JSON line on stdout. ``jittered``: as before revision 0012
    (not elected, a random delay of up to 0.1 s before each call)."""
    from scheduler_admin import config
    from scheduler_admin.waker import Waker

    options: dict[str, Any] = {"elect": False, "jitter": 0.1} if mode == "jittered" else {}
    waker = Waker.from_settings(config.resolve(url), **options)
    waker.run_forever()
    print(
        json.dumps(
            {
                "holder": waker.holder,
                "completed": waker.completed,
                "cycles": waker.cycles,
                "takeovers": waker.takeovers,
            }
        ),
        flush=True,
    )
    return 0


@contextlib.contextmanager
def waker_processes(
    url: str, dsn: str, count: int, mode: str, stats: list[dict[str, Any]]
) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` waker processes, each with its session open (and, elected, one holding the
    lease) before the insert; stopped with SIGTERM afterwards, their counts added to ``stats``
    (a killed one has none)."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.lateness",
                "--child-waker",
                url,
                "--child-mode",
                mode,
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        deadline = time.monotonic() + 60
        with connect(dsn) as conn:
            while True:
                row = conn.execute(
                    "select count(*) from pg_stat_activity where application_name = 'scheduler-admin'"
                ).fetchone()
                lease = conn.execute("select count(*) from scheduler.waker_lease").fetchone()
                if row and row[0] >= count and (mode != "elected" or (lease and lease[0])):
                    break
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("the waker processes did not all connect")
                time.sleep(0.1)
        time.sleep(1.0)  # every one has claimed (or called wake()) and listens
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            lines = [line for line in (out or "").splitlines() if line.startswith("{")]
            if lines:
                stats.append(json.loads(lines[-1]))


def kill_active(
    dsn: str, procs: list[subprocess.Popen[str]], delay: float, extra: dict[str, Any]
) -> None:
    """After ``delay`` seconds, SIGKILL the process holding the lease and record when (by the
    server's clock) a standby took it over."""
    time.sleep(delay)
    with connect(dsn) as conn:
        row = conn.execute("select holder from scheduler.waker_lease where scope = '*'").fetchone()
        assert row is not None, "no waker holds the lease"
        holder = str(row[0])
        pid = int(holder.split(":")[1])
        os.kill(pid, signal.SIGKILL)
        next(p for p in procs if p.pid == pid).wait(10)
        killed = conn.execute("select clock_timestamp()").fetchone()
        assert killed is not None
        deadline = time.monotonic() + 30
        successor = None
        while time.monotonic() < deadline:
            successor = conn.execute(
                "select holder, acquired_at from scheduler.waker_lease where scope = '*'"
            ).fetchone()
            if successor is not None and successor[0] != holder:
                break
            time.sleep(0.02)
    log(f"  killed the active waker (pid {pid}); successor {successor}")
    extra["kill"] = {
        "killed": holder,
        "killed_at": killed[0].isoformat(),
        "successor": None if successor is None else successor[0],
        "takeover_s": None
        if successor is None or successor[0] == holder
        else (successor[1] - killed[0]).total_seconds(),
    }


def run_waker_processes(
    offs: Sequence[float], spread: float, *, mode: str, kill: bool = False
) -> dict[str, Any]:
    with benchmark_cluster() as (cluster, _settings):
        dsn = cluster.dsn()
        migrate(dsn)
        server, cron = pg_versions(dsn)
        extra: dict[str, Any] = {
            "server": f"PostgreSQL {server}, pg_cron {cron}",
            "instances": 3,
            "mode": mode,
        }
        stats: list[dict[str, Any]] = []
        with waker_processes(cluster.url(), dsn, 3, mode, stats) as procs:
            killer = None
            if kill:
                killer = threading.Thread(
                    target=kill_active, args=(dsn, procs, LEAD_S + spread / 2, extra), daemon=True
                )
                killer.start()
            out = run_pg_meetings(dsn, offs, spread, extra=extra)
            if killer is not None:
                killer.join(60)
        extra["double"] = double_completions(dsn)
    extra["wakers"] = stats
    extra["waker_cycles"] = sum(int(s["cycles"]) for s in stats)
    extra["instances_calling_wake"] = sum(1 for s in stats if s["cycles"])
    log(f"  wakers (killed ones report nothing): {stats}")
    return {**out, **extra}


def run_waker_pg3(offs: Sequence[float], spread: float) -> dict[str, Any]:
    return run_waker_processes(offs, spread, mode="elected")


def run_waker_pg3_jitter(offs: Sequence[float], spread: float) -> dict[str, Any]:
    return run_waker_processes(offs, spread, mode="jittered")


def run_waker_pg3_kill(offs: Sequence[float], spread: float) -> dict[str, Any]:
    return run_waker_processes(offs, spread, mode="elected", kill=True)


def run_waker_rest(offs: Sequence[float], spread: float) -> dict[str, Any]:
    """The waker over REST: the Supabase shape behind the tests' PostgREST stand-in."""
    for path in (REPO_ROOT / "tests", REPO_ROOT / "tests" / "supabase"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        from postgrest_adapter import PostgrestAdapter  # type: ignore[import-not-found]
        from supabase_shape import SERVICE_KEY  # type: ignore[import-not-found]

        from scheduler_admin.backends.supabase import SupabaseBackend

        SupabaseBackend("http://127.0.0.1:1", SERVICE_KEY).transport.connect()
    except Exception as exc:
        return {"unavailable": f"the supabase extra or the stand-in is unavailable: {exc}"}
    from scheduler_admin.waker import REST_POLL, PollingSource, Waker

    with shape_cluster("supabase") as (target, _settings):
        server, cron = pg_versions(target.admin_dsn)
        extra: dict[str, Any] = {
            "server": f"PostgreSQL {server}, pg_cron {cron}, Supabase shape, REST",
            "poll_s": REST_POLL,
        }
        adapter = PostgrestAdapter(
            target.cluster.dsn(user="authenticator"),
            keys={SERVICE_KEY: "service_role"},
            schemas=("scheduler",),
        )
        with adapter.running():
            waker = Waker(
                PollingSource(SupabaseBackend(adapter.url, SERVICE_KEY), REST_POLL, adapter.url)
            )
            waker.start_thread()
            try:
                time.sleep(1.0)
                out = run_pg_meetings(target.dsn, offs, spread, extra=extra)
            finally:
                waker.stop()
            extra.update(
                {
                    "waker_completed": waker.completed,
                    "waker_cycles": waker.cycles,
                    "elected": waker.elected,
                }
            )
        extra["double"] = double_completions(target.admin_dsn)
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
    "waker-pg3": run_waker_pg3,
    "waker-pg3-jitter": run_waker_pg3_jitter,
    "waker-pg3-kill": run_waker_pg3_kill,
    "waker-rest": run_waker_rest,
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
        "| Configuration | Server / pg_cron | p50 (s) | p99 (s) | max (s) | early | double "
        "| not done | Target | Met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, res in results.items():
        if "unavailable" in res or "error" in res:
            why = res.get("unavailable") or f"failed: {res['error']}"
            lines.append(
                f"| {LABELS[config]} | {why} | - | - | - | - | - | - | {TARGETS[config][1]} "
                "| not run |"
            )
            continue
        met = "yes" if res["met"] else "**NO**"
        lines.append(
            f"| {LABELS[config]} | {res.get('server', '?')} | {fmt_s(res['p50_s'])} | "
            f"{fmt_s(res['p99_s'])} | {fmt_s(res['max_s'])} | {res['early']} | "
            f"{'-' if res.get('double') is None else res['double']} | "
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
    parser.add_argument("--child-waker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", choices=CHILD_MODES, default="elected",
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child_waker:
        return child_waker(args.child_waker, args.child_mode)
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
            res.update(summarize(config, pairs, args.size, res.get("double")))
            res["lateness_s"] = sorted((d - e).total_seconds() for e, d in pairs if d is not None)
            log(
                f"  p50 {fmt_s(res['p50_s'])} s, p99 {fmt_s(res['p99_s'])} s, "
                f"max {fmt_s(res['max_s'])} s, early {res['early']}, double {res['double']}, "
                f"not done {res['not_done']}"
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
