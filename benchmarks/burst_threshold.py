"""Where job runs start failing on the per-call path (the Supabase shape), one minute tick each.

``--shape superuser`` runs the same experiments on the set-based path (the superuser owns
public.meetings and removes jobs with one DELETE from cron.job per statement); the server log is
kept next to the JSON output either way, its lines prefixed with the writing process's type, lock
waits of 100 ms or more logged.

``--held-unschedule K``: scheduler.unschedule_jobs waits on a job's row another transaction
deletes or re-registers while K invalidations of cron.job commit (no minute tick): the "stack
depth limit exceeded" of the set-based path, deterministic from about 1,500 (a 2 MB stack).
``--invalidations R`` adds R such invalidations a second to each burst, ``--max-stack-depth`` lowers
the limit, ``--apply-sql`` tries a proposed change (a file run as the owner after the migration)::

    python -m benchmarks.burst_threshold --shape superuser --unschedule '' --bursts '' \
        --held-unschedule 1000,1500,3000

On the Supabase shape the owner of public.meetings may not write cron.job, so the scheduler
removes jobs with one ``cron.unschedule`` call per job, and each call makes pg_cron's statement
trigger on cron.job queue one cache invalidation. Two experiments, each on a fresh tick:

* ``--unschedule K``: ``--bystanders`` jobs fire at the tick M (``--bystander-kinds``: ``plain``
  runs touch no cron table, ``job`` runs call scheduler.complete_meeting 50 times, which reads
  cron.job, as a meeting's job does); at M + 0.3 s the migration role removes K other jobs of
  its own with ``cron.unschedule`` in one transaction. Counted afterwards: failed runs by
  message, and the server log (stack depth errors, crashes, errors) written meanwhile.
* ``--bursts N``: the burst scenario of ``python -m benchmarks`` (N meetings through the
  triggers, ending before M) on the same cluster: whatever the checkout's SQL does per run.

Prints one markdown table::

    python -m benchmarks.burst_threshold --unschedule 500,1000,2000,5000,10000 \
        --bystander-kinds plain,job --bursts 2000,5000,20000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import scenarios as sc
from benchmarks.common import (
    REPO_ROOT,
    SHAPES,
    Target,
    clean,
    connect,
    log,
    log_offset,
    scan_log,
    shape_cluster,
    sleep_until,
    utcnow,
)

# What the bystander runs do: ``plain`` touches no cron table; ``job`` runs what a meeting's job
# runs (scheduler.complete_meeting, which reads cron.job in unregister_jobs), 50 times, for ids of
# no meeting (nothing to complete, no job to remove).
BYSTANDER_COMMANDS = {
    "plain": "select pg_sleep(0.2); select count(*) from public.meetings",
    "job": "select pg_sleep(0.1); set statement_timeout = '2min'; "
    "select count(scheduler.complete_meeting(gen_random_uuid())) from generate_series(1, 50)",
}


def _sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def _next_tick(lead: float) -> dt.datetime:
    at = utcnow() + dt.timedelta(seconds=lead)
    tick = at.replace(second=0, microsecond=0)
    return tick if tick >= at else tick + dt.timedelta(minutes=1)


def _insert_jobs(admin: Any, prefix: str, count: int, schedule: str, command: str) -> None:
    """``count`` jobs of the owner of public.meetings, inserted into cron.job in one statement
    (one invalidation; benchmark-only), copying the connection columns of the reconcile job."""
    admin.execute(
        "insert into cron.job (schedule, command, nodename, nodeport, database, username, jobname) "
        "select %s, %s, r.nodename, r.nodeport, r.database, r.username, %s || i "
        "from cron.job r, generate_series(1, %s) i "
        "where r.jobname = 'meeting-status-reconcile'",
        (schedule, command, prefix, count),
    )


def _drop_bench_jobs(admin: Any) -> None:
    admin.execute("delete from cron.job where jobname like 'bench-%'")


def unschedule_once(
    target: Target, k: int, bystanders: int, kind: str = "plain", timeout: float = 90.0
) -> dict[str, Any]:
    with connect(target.admin_dsn) as admin, connect(target.dsn) as conn:
        clean(admin)
        _drop_bench_jobs(admin)
        tick = _next_tick(12.0)
        schedule = f"{tick.minute} {tick.hour} {tick.day} {tick.month} *"
        _insert_jobs(admin, "bench-victim-", k, "0 0 1 1 *", "select 1")
        _insert_jobs(admin, "bench-bystander-", bystanders, schedule, BYSTANDER_COMMANDS[kind])
        log(f"unschedule {k}: {bystanders} {kind} bystanders fire at {tick:%H:%M:%S}")
        sleep_until(tick - dt.timedelta(seconds=2))
        offset = log_offset(target.logfile)
        sleep_until(tick + dt.timedelta(seconds=0.3))
        start = time.perf_counter()
        with conn.transaction():
            removed = conn.execute(
                "select count(cron.unschedule(jobid)) from cron.job "
                "where jobname like 'bench-victim-%' and username = current_user"
            ).fetchone()[0]
        took = time.perf_counter() - start
        # wait for every bystander run (and the reconcile run of the tick) to finish
        deadline = time.perf_counter() + timeout
        max_running = 0
        last = None
        stable = time.perf_counter()
        while time.perf_counter() < deadline:
            total, active = admin.execute(
                f"select count(*), count(*) filter (where {sc.ACTIVE_RUN}) from cron.job_run_details"
            ).fetchone()
            max_running = max(max_running, active)
            if (total, active) != last:
                last, stable = (total, active), time.perf_counter()
            elif active == 0 and total >= bystanders and time.perf_counter() - stable > 3:
                break
            time.sleep(0.25)
        failures = admin.execute(
            "select left(return_message, 200), count(*) from cron.job_run_details "
            "where status = 'failed' group by 1 order by 2 desc"
        ).fetchall()
        runs, succeeded = admin.execute(
            "select count(*), count(*) filter (where status = 'succeeded') from cron.job_run_details"
        ).fetchone()
        overlap = admin.execute(sc.MAX_OVERLAP_SQL).fetchone()[0]
        server_log = scan_log(target.logfile, offset)
        _drop_bench_jobs(admin)
        clean(admin)
    return {
        "experiment": f"unschedule {k}, {kind} bystanders",
        "k": k,
        "removed": removed,
        "unschedule_s": took,
        "runs": runs,
        "succeeded": succeeded,
        "failed": [[m, c] for m, c in failures],
        "max_running_polled": max_running,
        "max_running_overlap": overlap,
        "log_stack_depth": server_log["stack_depth"],
        "log_stack_depth_autovacuum": server_log["stack_depth_autovacuum"],
        "log_crash": server_log["crash"],
        "log_errors": server_log["error"],
        "log_samples": server_log["samples"],
    }


def _invalidate(dsn: str, per_second: float, seconds: float, stop: threading.Event) -> None:
    """From the first meeting's job run of a burst on, for ``seconds``: ``per_second`` statements
    on cron.job that change no row (a DELETE of a name no job has), each in its own transaction:
    pg_cron's statement trigger makes each queue one cache invalidation of cron.job, as a write
    of the application's (a meeting inserted, moved or deleted) does on the set-based path."""
    with connect(dsn) as conn:
        while not stop.is_set():
            started = conn.execute(
                "select exists (select 1 from cron.job_run_details "
                "where command like '%complete_meeting%')"
            ).fetchone()[0]
            if started:
                break
            time.sleep(0.02)
        until = time.perf_counter() + seconds
        count = 0
        start = time.perf_counter()
        while not stop.is_set() and time.perf_counter() < until:
            conn.execute("delete from cron.job where jobname = 'bench-no-such-job'")
            count += 1
            ahead = count / per_second - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
        log(
            f"invalidator: {count} invalidations of cron.job in {time.perf_counter() - start:.1f} s"
        )


# What holds the job's row while scheduler.unschedule_jobs waits for it: another transaction that
# deletes it (a concurrent removal) or updates it (a re-registration, INSERT ... ON CONFLICT DO
# UPDATE).
HOLDERS = {
    "deletes": "delete from cron.job where jobname = 'meeting-status-held'",
    "re-registers": "update cron.job set schedule = '1 0 1 1 *' where jobname = 'meeting-status-held'",
}


def held_unschedule_once(target: Target, k: int, holder: str) -> dict[str, Any]:
    """scheduler.unschedule_jobs (as the owner of public.meetings, in a fresh session as a job run
    is) waits for a job's row that another transaction holds, while ``k`` statements on cron.job
    that change nothing commit one invalidation each; then the holder commits."""
    with connect(target.admin_dsn) as admin:
        admin.execute(
            "insert into cron.job (schedule, command, nodename, nodeport, database, username, jobname) "
            "select '0 0 1 1 *', 'select 1', r.nodename, r.nodeport, r.database, r.username, "
            "'meeting-status-held' from cron.job r where r.jobname = 'meeting-status-reconcile' "
            "on conflict do nothing"
        )
    offset = log_offset(target.logfile)
    result: dict[str, Any] = {}
    with connect(target.admin_dsn) as hold:
        hold.execute("begin")
        hold.execute(HOLDERS[holder])

        def victim() -> None:
            try:
                with connect(target.dsn) as conn:
                    result["removed"] = conn.execute(
                        "select scheduler.unschedule_jobs(array['meeting-status-held'])"
                    ).fetchone()[0]
            except psycopg.Error as exc:
                result["error"] = str(exc).splitlines()[0]

        thread = threading.Thread(target=victim, daemon=True)
        thread.start()
        time.sleep(0.5)
        start = time.perf_counter()
        with connect(target.admin_dsn) as conn:
            for _ in range(k):
                conn.execute("delete from cron.job where jobname = 'bench-no-such-job'")
        took = time.perf_counter() - start
        hold.execute("commit")
    thread.join(60)
    with connect(target.admin_dsn) as admin:
        admin.execute("delete from cron.job where jobname = 'meeting-status-held'")
    server_log = scan_log(target.logfile, offset)
    return {
        "experiment": f"unschedule_jobs waits on a row another transaction {holder}, "
        f"{k} invalidations meanwhile",
        "unschedule_s": took,
        "runs": "-",
        "failed": [[result["error"], 1]] if "error" in result else [],
        "removed": result.get("removed"),
        "max_running_polled": "-",
        "max_running_overlap": "-",
        "log_stack_depth": server_log["stack_depth"],
        "log_stack_depth_autovacuum": server_log["stack_depth_autovacuum"],
        "log_crash": server_log["crash"],
        "log_errors": server_log["error"],
        "log_samples": server_log["samples"],
    }


def burst(
    target: Target, size: int, rate: sc.InsertRate, invalidations: float = 0.0
) -> dict[str, Any]:
    offset = log_offset(target.logfile)
    stop = threading.Event()
    thread = None
    if invalidations > 0:
        thread = threading.Thread(
            target=_invalidate, args=(target.admin_dsn, invalidations, 20.0, stop), daemon=True
        )
        thread.start()
    try:
        out = sc.burst_once(
            target.dsn, size, rate, admin_dsn=target.admin_dsn, logfile=target.logfile
        )
    except psycopg.Error as exc:  # the server crashed (it restarts): count what the log says
        server_log = scan_log(target.logfile, offset)
        log(f"burst {size} failed: {type(exc).__name__}: {exc}")
        time.sleep(10)  # crash recovery
        return {
            "experiment": f"burst {size} (the server crashed: {type(exc).__name__})",
            "failed": [],
            "max_running_polled": "?",
            "max_running_overlap": "?",
            "log_stack_depth": server_log["stack_depth"],
            "log_stack_depth_autovacuum": server_log["stack_depth_autovacuum"],
            "log_crash": server_log["crash"],
            "log_errors": server_log["error"],
            "log_samples": server_log["samples"],
        }
    finally:
        stop.set()
        if thread is not None:
            thread.join()
    out["experiment"] = f"burst {size}" + (
        f", {invalidations:.0f} invalidations/s" if invalidations > 0 else ""
    )
    return out


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| experiment | done / unschedule (s) | runs | failed runs other than `job canceled` "
        "| `job canceled` | max running (polled / from run times) | server log: stack depth (of "
        "which autovacuum) / crash lines / ERROR+FATAL |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        failed = dict((m, c) for m, c in r.get("failed", r.get("failures", [])))
        canceled = failed.pop("job canceled", 0)
        real = "; ".join(f"{c} x `{' '.join(m.split())[:60]}`" for m, c in failed.items()) or "0"
        secs = r.get("unschedule_s", r.get("done_s"))
        runs = r.get("runs", r.get("run_details_added"))
        lines.append(
            f"| {r['experiment']} | {secs if secs is None else f'{secs:.2f}'} | {runs} | {real} "
            f"| {canceled} | {r['max_running_polled']} / {r['max_running_overlap']} "
            f"| {r['log_stack_depth']} ({r.get('log_stack_depth_autovacuum', '?')}) "
            f"/ {r['log_crash']} / {r['log_errors']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.burst_threshold", description=__doc__)
    p.add_argument("--unschedule", type=_sizes, default=[500, 1000, 2000, 5000, 10000])
    p.add_argument("--bursts", type=_sizes, default=[2000, 5000, 20000])
    p.add_argument("--bystanders", type=int, default=1000)
    p.add_argument(
        "--bystander-kinds",
        default="plain",
        help="plain (touch no cron table) and/or job (run complete_meeting, which reads cron.job)",
    )
    p.add_argument(
        "--shape",
        choices=SHAPES,
        default="supabase",
        help="owner of public.meetings: supabase (per-call path, the default) or superuser "
        "(set-based path: one DELETE from cron.job per statement)",
    )
    p.add_argument(
        "--burst-repeat", type=int, default=1, help="run each of --bursts this many times"
    )
    p.add_argument(
        "--invalidations",
        type=float,
        default=0.0,
        help="during each burst (20 s from its first job run), this many statements per second "
        "on cron.job that change nothing, each one cache invalidation of cron.job (what the "
        "application's writes send on the set-based path); default 0",
    )
    p.add_argument(
        "--held-unschedule",
        type=_sizes,
        default=[],
        help="invalidations (e.g. 1000,1500,3000) committed while scheduler.unschedule_jobs "
        "waits on a job's row another transaction deletes or re-registers, one experiment each "
        "(no minute tick); default none",
    )
    p.add_argument(
        "--apply-sql",
        type=Path,
        action="append",
        default=[],
        help="SQL file run as the owner of public.meetings after the migration (a proposed "
        "change to try before it becomes a revision); repeatable",
    )
    p.add_argument(
        "--max-stack-depth",
        help="the server's max_stack_depth (e.g. 100kB, its minimum; PostgreSQL's default is "
        "2MB): a lower limit shows a recursion that only a rarer backlog takes to 2 MB",
    )
    p.add_argument(
        "--json-output", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "threshold.json"
    )
    args = p.parse_args(argv)
    results: list[dict[str, Any]] = []
    rate = sc.InsertRate()
    with shape_cluster(args.shape) as (target, _settings):
        log(f"{args.shape}-shaped cluster on port {target.cluster.port}, log {target.logfile}")
        # Each log line says which process wrote it (client backend, pg_cron's launcher and
        # workers, autovacuum worker), and an error its statement and context.
        with connect(target.admin_dsn) as admin:
            admin.execute("alter system set log_line_prefix = '%m [%p] %b %a: '")
            admin.execute("alter system set log_autovacuum_min_duration = 0")
            # a statement that waits on a lock with cron.job open takes every invalidation
            # committed meanwhile at once: say which statements wait, and for how long
            admin.execute("alter system set log_lock_waits = on")
            admin.execute("alter system set deadlock_timeout = '100ms'")
            if args.max_stack_depth:
                admin.execute(f"alter system set max_stack_depth = '{args.max_stack_depth}'")
            admin.execute("select pg_reload_conf()")
        for path in args.apply_sql:
            with connect(target.dsn) as conn:
                conn.execute(path.read_text())
            log(f"applied {path}")
        for k in args.held_unschedule:
            for holder in HOLDERS:
                results.append(held_unschedule_once(target, k, holder))
                log(json.dumps({x: v for x, v in results[-1].items() if x != "log_samples"}))
        for kind in [x.strip() for x in args.bystander_kinds.split(",") if x.strip()]:
            for k in args.unschedule:
                results.append(unschedule_once(target, k, args.bystanders, kind))
                log(json.dumps({x: v for x, v in results[-1].items() if x != "log_samples"}))
                for line in results[-1]["log_samples"]:
                    log(f"  log: {line}")
        for size in [n for _ in range(args.burst_repeat) for n in args.bursts]:
            results.append(burst(target, size, rate, args.invalidations))
            log(
                json.dumps(
                    {k: v for k, v in results[-1].items() if k != "log_samples"}, default=str
                )
            )
            for line in results[-1]["log_samples"]:
                log(f"  log: {line}")
        # keep the server log (the cluster is removed on exit)
        args.json_output.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copyfile(target.logfile, args.json_output.with_suffix(".postgresql.log"))
    print("\n".join(table(results)))
    args.json_output.parent.mkdir(parents=True, exist_ok=True)
    args.json_output.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
