"""Where job runs start failing on the per-call path (the Supabase shape), one minute tick each.

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
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import scenarios as sc
from benchmarks.common import (
    REPO_ROOT,
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


def burst(target: Target, size: int, rate: sc.InsertRate) -> dict[str, Any]:
    offset = log_offset(target.logfile)
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
    out["experiment"] = f"burst {size}"
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
        "--json-output", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "threshold.json"
    )
    args = p.parse_args(argv)
    results: list[dict[str, Any]] = []
    rate = sc.InsertRate()
    with shape_cluster("supabase") as (target, _settings):
        log(f"supabase-shaped cluster on port {target.cluster.port}, log {target.logfile}")
        for kind in [x.strip() for x in args.bystander_kinds.split(",") if x.strip()]:
            for k in args.unschedule:
                results.append(unschedule_once(target, k, args.bystanders, kind))
                log(json.dumps({x: v for x, v in results[-1].items() if x != "log_samples"}))
                for line in results[-1]["log_samples"]:
                    log(f"  log: {line}")
        for size in args.bursts:
            results.append(burst(target, size, rate))
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
