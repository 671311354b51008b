"""python -m benchmarks: start a throwaway PostgreSQL with pg_cron, run every scenario, print one table.

See benchmarks/README.md. Progress goes to stderr; the table (markdown) to stdout and, with
--output, to a file together with the machine description and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import scenarios as sc
from benchmarks.common import (
    REPO_ROOT,
    SERVERS,
    SHAPES,
    Target,
    clean,
    connect,
    count_our_jobs,
    function_exists,
    log,
    log_offset,
    machine_description,
    median,
    scan_log,
    server_settings,
    shape_cluster,
    utcnow,
)


def _sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def _words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _horizons(text: str) -> list[str | None]:
    """``none`` (no horizon) and/or intervals as PostgreSQL reads them, comma-separated."""
    return [None if x.lower() in ("none", "null") else x for x in _words(text)]


SCENARIOS = ["write", "writecost", "breakdown", "burst", "recovery", "inspection", "anchor"]
# Scenarios that run on every shape; the others need the superuser as the owner (they disable
# pg_cron's trigger on cron.job, or do not depend on the owner at all: the anchor).
SHAPE_SCENARIOS = {"writecost", "burst", "recovery", "inspection"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the pg_cron meeting status scheduler against its APScheduler anchor.",
    )
    p.add_argument(
        "--burst-sizes",
        type=_sizes,
        default=[2000, 20000, 100000],
        help="meetings ending in the same minute, per burst (default 2000,20000,100000)",
    )
    p.add_argument("--repeat", type=int, default=3, help="repetitions of each scenario (default 3)")
    p.add_argument(
        "--burst-repeat",
        type=int,
        default=None,
        help="repetitions of each burst of 20,000 meetings or more (default --repeat)",
    )
    p.add_argument(
        "--small-burst-repeat",
        type=int,
        default=1,
        help="repetitions of bursts under 20,000 meetings (no target in the issue; default 1)",
    )
    p.add_argument(
        "--write-seconds",
        type=float,
        default=5.0,
        help="duration of each single-row insert measurement (default 5)",
    )
    p.add_argument(
        "--write-clients", type=int, default=2, help="single-row insert clients (default 2)"
    )
    p.add_argument(
        "--write-rows",
        type=int,
        default=10000,
        help="rows of the one-statement insert (default 10000)",
    )
    p.add_argument(
        "--breakdown-rows",
        type=int,
        default=10000,
        help="rows per piece of the insert-cost breakdown",
    )
    p.add_argument(
        "--breakdown-single-rows",
        type=int,
        default=1000,
        help="single-row transactions per piece of the breakdown (default 1000)",
    )
    p.add_argument(
        "--recovery-size", type=int, default=100000, help="meetings to recover (default 100000)"
    )
    p.add_argument(
        "--inspection-size", type=int, default=100000, help="jobs to list (default 100000)"
    )
    p.add_argument(
        "--anchor-sizes",
        type=_sizes,
        default=[2000],
        help="burst sizes for the APScheduler anchor (default 2000; adding a job to its "
        "SQLite store costs ~5-10 ms, so 20000 adds minutes)",
    )
    p.add_argument(
        "--anchor-modes",
        type=_words,
        default=["default", "no-grace"],
        help="default (misfire_grace_time 1 s) and/or no-grace (None)",
    )
    p.add_argument(
        "--anchor-spreads",
        type=_words,
        default=["instant"],
        help="instant (all due at once) and/or minute (spread over 60 s)",
    )
    p.add_argument(
        "--anchor-repeat",
        type=int,
        default=None,
        help="repetitions of each anchor run (default --repeat)",
    )
    p.add_argument(
        "--min-spread",
        type=float,
        default=15.0,
        help="burst end times spread over at least this many seconds before the tick",
    )
    p.add_argument(
        "--burst-timeout", type=float, default=300.0, help="give up a burst after this (s)"
    )
    p.add_argument(
        "--only", type=_words, default=SCENARIOS, help=f"scenarios to run: {','.join(SCENARIOS)}"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: bursts 200,2000, sizes 10000, one repetition",
    )
    p.add_argument(
        "--shapes",
        type=_words,
        default=list(SHAPES),
        help="owners of public.meetings to benchmark, one throwaway cluster each, one after the "
        "other: superuser (self-hosted, set-based path) and/or supabase (migration role with "
        "Supabase's pg_cron grants, per-call path); default both. Write overhead, breakdown and "
        "anchor run on the superuser shape only",
    )
    p.add_argument(
        "--writecost-rows",
        type=int,
        default=10000,
        help="meetings per write-cost measurement, in 2,000-row statements (default 10000)",
    )
    p.add_argument(
        "--writecost-single-rows",
        type=int,
        default=500,
        help="single-row transactions per write-cost measurement (default 500)",
    )
    p.add_argument(
        "--server",
        choices=SERVERS,
        default="local",
        help="local: a throwaway cluster of this machine's binaries (pg_cron 1.4 here; default); "
        "container: the container lane (PostgreSQL 17 + pg_cron 1.6, the image of "
        "scripts/build-pg17-image.sh), as benchmarks.scale runs it",
    )
    p.add_argument(
        "--horizon",
        type=_horizons,
        default=None,
        help="recovery with these default job horizons, side by side (e.g. 'none,6 hours'): "
        "the rows end evenly over --recovery-days days from 10 minutes ahead, the horizon is set "
        "with scheduler.set_job_horizon() before scheduler.recover(). Without it: rows 3 to ~33 "
        "days ahead, no horizon set",
    )
    p.add_argument(
        "--recovery-days",
        type=float,
        default=30.0,
        help="with --horizon: days the recovered rows' end times spread over (default 30)",
    )
    p.add_argument("--profile", action="store_true", help="also preload pg_stat_statements")
    p.add_argument(
        "--output", type=Path, help="write the table, machine and command (markdown) here"
    )
    p.add_argument(
        "--json-output",
        type=Path,
        default=REPO_ROOT / "benchmarks" / "out" / "results.json",
        help="raw results (default benchmarks/out/results.json, not committed)",
    )
    args = p.parse_args(argv)
    if args.quick:
        given = set(argv or sys.argv[1:])
        if "--burst-sizes" not in given:
            args.burst_sizes = [200, 2000]
        if "--repeat" not in given:
            args.repeat = 1
        args.write_seconds = min(args.write_seconds, 2.0)
        args.write_rows = min(args.write_rows, 2000)
        args.breakdown_rows = min(args.breakdown_rows, 2000)
        args.breakdown_single_rows = min(args.breakdown_single_rows, 300)
        args.writecost_rows = min(args.writecost_rows, 4000)
        args.writecost_single_rows = min(args.writecost_single_rows, 200)
        args.recovery_size = min(args.recovery_size, 10000)
        args.inspection_size = min(args.inspection_size, 10000)
        args.anchor_sizes = [min(s, 500) for s in args.anchor_sizes]
    if args.burst_repeat is None:
        args.burst_repeat = args.repeat
    if args.anchor_repeat is None:
        args.anchor_repeat = args.repeat
    args.small_burst_repeat = min(args.small_burst_repeat, args.burst_repeat)
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    unknown = set(args.shapes) - set(SHAPES)
    if unknown or not args.shapes:
        p.error(f"--shapes: expected some of {', '.join(SHAPES)}")
    return args


# ------------------------------------------------------------------------------ scheduling


@dataclass
class Task:
    """A unit of work that does not need a minute tick: run in the idle time before a burst."""

    name: str
    estimate: float
    run: Callable[[], None]
    kind: str = ""


# Seconds each kind of task took (the estimates of its later tasks); kept pessimistic (max).
_TOOK: dict[str, float] = {}


def estimate(task: Task) -> float:
    took = _TOOK.get(task.kind)
    return task.estimate if took is None else took * 1.1 + 1.0


@dataclass
class Results:
    write: list[dict[str, float]] = field(default_factory=list)
    writecost: list[dict[str, float]] = field(default_factory=list)
    breakdown: list[dict[str, float]] = field(default_factory=list)
    bursts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    recovery: list[dict[str, Any]] = field(default_factory=list)
    inspection: list[dict[str, Any]] = field(default_factory=list)
    inspection_extra: dict[str, Any] = field(default_factory=dict)
    anchor: dict[tuple[int, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def build_tasks(args: argparse.Namespace, target: Target, res: Results) -> list[Task]:
    tasks: list[Task] = []
    only = set(args.only)
    if target.shape != "superuser":
        only &= SHAPE_SCENARIOS
    # dsn: the owner of public.meetings (every measured statement); admin: the superuser
    dsn, admin, url = target.dsn, target.admin_dsn, target.url

    def guarded(key: str, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if key in res.unavailable:
                return
            try:
                fn()
            except sc.NotAvailable as exc:
                res.unavailable[key] = str(exc)
                log(f"{key}: not available yet: {exc}")
            except Exception as exc:
                res.errors[key] = f"{type(exc).__name__}: {exc}"
                log(f"{key}: failed:\n{traceback.format_exc()}")

        return run

    if "write" in only:
        per_rep = 2 * (args.write_seconds + 1) + args.write_rows * 0.0001 + 3
        for rep in range(args.repeat):

            def write(rep: int = rep) -> None:
                out = sc.write_overhead_once(
                    dsn, rep, args.write_seconds, args.write_clients, args.write_rows
                )
                res.write.append(out)
                log(f"write overhead rep {rep + 1}: single {out['single_ratio']:.3f}, "
                    f"statement {out['statement_ratio']:.3f}")  # fmt: skip

            tasks.append(Task(f"write-{rep}", per_rep, guarded("write", write), "write"))
    if "writecost" in only:
        for rep in range(args.repeat):

            def writecost(rep: int = rep) -> None:
                out = sc.write_cost_once(
                    dsn, args.writecost_rows, args.writecost_single_rows, rep, admin_dsn=admin
                )
                res.writecost.append(out)
                log(f"write cost rep {rep + 1} ({target.shape}): "
                    + ", ".join(f"{k} {v:.0f}" for k, v in out.items()))  # fmt: skip

            est = args.writecost_rows * 0.0004 + args.writecost_single_rows * 0.004 + 3
            tasks.append(
                Task(f"writecost-{rep}", est, guarded("writecost", writecost), "writecost")
            )
    if "breakdown" in only:

        def breakdown() -> None:
            out = sc.write_breakdown(
                dsn, args.breakdown_rows, args.breakdown_single_rows, args.repeat
            )
            res.breakdown.append(out)
            log("breakdown (us/row): " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()
                                                   if not k.endswith("_runs")))  # fmt: skip

        tasks.append(
            Task(
                "breakdown",
                (args.breakdown_rows * 0.0015 + args.breakdown_single_rows * 0.005) * args.repeat
                + 5,
                guarded("breakdown", breakdown),
                "breakdown",
            )
        )
    if "recovery" in only:
        for rep in range(args.repeat):
            for horizon in args.horizon or [None]:

                def recovery(rep: int = rep, horizon: str | None = horizon) -> None:
                    if args.horizon is None:
                        out = sc.recovery_once(dsn, args.recovery_size, admin_dsn=admin)
                    else:
                        out = recovery_with_horizon_once(
                            dsn, admin, args.recovery_size, horizon, args.recovery_days
                        )
                    res.recovery.append(out)
                    log(f"recovery rep {rep + 1} (horizon {horizon or 'none'}): "
                        f"{out['seconds']:.2f} s, report {out['report']}")  # fmt: skip

                tasks.append(Task(f"recovery-{rep}-{horizon or 'none'}", args.recovery_size * 0.0001 + 3,
                                  guarded("recovery", recovery), "recovery"))  # fmt: skip
    if "inspection" in only:

        def inspection() -> None:
            order, _ = sc.inspection_probe(url)  # raises NotAvailable before the costly setup
            jobs = sc.setup_jobs_directly(admin, args.inspection_size, owner_dsn=dsn)
            res.inspection_extra["jobs_present"] = jobs
            res.inspection_extra["python_startup_s"] = sc.python_startup(order)
            res.inspection_extra["sql_floor_s"] = sc.list_jobs_sql_time(dsn)
            for rep in range(args.repeat):
                out = sc.inspection_once(url, order)
                res.inspection.append(out)
                log(f"list-jobs rep {rep + 1}: {out['seconds']:.2f} s, {out['jobs_listed']} jobs")

        tasks.append(Task("inspection", args.inspection_size * 0.0001 + 3 * args.repeat + 5,
                          guarded("inspection", inspection), "inspection"))  # fmt: skip
    if "anchor" in only:
        for size in args.anchor_sizes:
            for spread in args.anchor_spreads:
                for mode in args.anchor_modes:
                    for rep in range(args.anchor_repeat):
                        key = (size, mode, spread)

                        def anchor(key: tuple[int, str, str] = key, rep: int = rep) -> None:
                            size, mode, spread = key
                            out = sc.anchor_once(dsn, size, mode, spread, args.burst_timeout)
                            res.anchor.setdefault(key, []).append(out)
                            log(f"anchor {size} {mode} {spread} rep {rep + 1}: lost {out['lost']}, "
                                f"done {out['done_s']}, processed {out['processed_s']}")  # fmt: skip

                        est = size * 0.012 + 8 + (60 if spread == "minute" else 0)
                        tasks.append(Task(f"anchor-{size}-{mode}-{spread}-{rep}", est,
                                          guarded("anchor", anchor), f"anchor-{size}-{spread}"))  # fmt: skip
    return tasks


def _one(conn: Any, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def recovery_with_horizon_once(
    dsn: str, admin_dsn: str, size: int, horizon: str | None, days: float
) -> dict[str, Any]:
    """``scheduler.recover()`` as the owner (``dsn``) of ``size`` upcoming meetings ending evenly
    over ``days`` days from 10 minutes ahead (as benchmarks.scale spreads them), inserted with
    the triggers off, with the default job horizon ``horizon`` (None: none) set before. The
    reconcile job is held off during the insert by the lock it skips on (scheduler.locks
    'repair'), released at its commit, right before recover()."""
    with connect(admin_dsn) as admin, connect(dsn) as conn:
        if not function_exists(conn, "scheduler.recover(boolean,text)"):
            raise sc.NotAvailable(
                "scheduler.recover(boolean, text) does not exist in this checkout"
            )
        if horizon is not None and not function_exists(
            conn, "scheduler.set_job_horizon(interval,text)"
        ):
            raise sc.NotAvailable("scheduler.set_job_horizon does not exist in this checkout")
        clean(admin)
        admin.execute("vacuum analyze scheduler.completion_events")
        if function_exists(conn, "scheduler.set_job_horizon(interval,text)"):
            conn.execute("select scheduler.set_job_horizon(%s::interval)", (horizon,))
        with admin.transaction():
            admin.execute("select 1 from scheduler.locks where name = 'repair' for update")
            admin.execute("set local session_replication_role = replica")
            admin.execute(
                "insert into public.meetings (title, start_time, end_time) "
                "select 'recover', e - interval '1 hour', e from ("
                "  select now() + interval '10 minutes' "
                "         + (g - 1) * (%s::double precision * interval '1 day' / %s) e"
                "  from generate_series(1, %s) g) s",
                (days, size, size),
            )
            admin.execute("analyze public.meetings")
        jobs_before = count_our_jobs(conn)
        cutoff = _one(conn, "select scheduler.job_cutoff('meetings')::text")[0]
        start = time.perf_counter()
        report = _one(conn, "select scheduler.recover()")[0]
        seconds = time.perf_counter() - start
        if isinstance(report, str):
            report = json.loads(report)
        jobs_after = count_our_jobs(conn)
        # every meeting within the horizon (as it was at recover()) has its job with the right
        # schedule; none a minute or more beyond it has one
        mismatched, beyond_with_job = _one(
            conn,
            "select count(*) filter (where m.end_time <= %(cutoff)s::timestamptz "
            "                          and (j.jobid is null or j.schedule <> scheduler.cron_schedule(m.end_time))), "
            "       count(*) filter (where m.end_time > %(cutoff)s::timestamptz + interval '1 minute' and j.jobid is not null) "
            "from public.meetings m left join cron.job j on j.jobname = scheduler.job_name(m.id) "
            "where m.status = 'upcoming'",
            {"cutoff": cutoff},
        )  # fmt: skip
        if horizon is not None:
            conn.execute("select scheduler.set_job_horizon(null)")
    return {
        "size": size,
        "horizon": horizon,
        "days": days,
        "seconds": seconds,
        "jobs_before": jobs_before,
        "jobs_after": jobs_after,
        "jobs_registered": jobs_after - jobs_before,
        "meetings_without_matching_job": mismatched + beyond_with_job,
        "report": {k: v for k, v in report.items() if k != "errors"}
        | {"errors": len(report.get("errors") or [])},
    }


def run_all(args: argparse.Namespace, target: Target, res: Results) -> None:
    fillers = build_tasks(args, target, res)
    rate = sc.InsertRate()
    bursts = []
    if "burst" in args.only:
        bursts = [
            size for rep in range(args.burst_repeat) for size in args.burst_sizes
            if size >= 20000 or rep < args.small_burst_repeat
        ]  # fmt: skip

    def run_task(task: Task) -> None:
        log(f"running {task.name} (estimated {estimate(task):.0f} s)")
        start = time.perf_counter()
        task.run()
        took = time.perf_counter() - start
        _TOOK[task.kind] = max(took, _TOOK.get(task.kind, 0.0))
        log(f"{task.name} took {took:.0f} s")

    for i, size in enumerate(bursts):
        # Fill the wait for the next usable minute tick with work that needs no tick.
        while fillers:
            plan = sc.plan_burst(size, rate, args.min_spread)
            slack = (plan.insert_start - utcnow()).total_seconds() - 5
            # The longest task that fits the wait (measured durations once a task of its kind ran).
            fits = [t for t in fillers if estimate(t) <= slack]
            fit = max(fits, key=estimate, default=None)
            if fit is None:
                break
            fillers.remove(fit)
            run_task(fit)
        log(f"burst {i + 1}/{len(bursts)}: {size} meetings")
        offset = log_offset(target.logfile)
        try:
            out = sc.burst_once(
                target.dsn, size, rate, admin_dsn=target.admin_dsn, logfile=target.logfile,
                min_spread=args.min_spread, timeout=args.burst_timeout,
            )  # fmt: skip
        except Exception as exc:
            # a crash: say what the server log says (the server restarts after a crash)
            scan = scan_log(target.logfile, offset)
            res.errors[f"burst-{size}"] = (
                f"{type(exc).__name__}: {exc}; server log: {scan['stack_depth']} stack depth, "
                f"{scan['crash']} crash lines: {' / '.join(scan['samples'][:2])}"
            )
            log(f"burst {size} failed:\n{traceback.format_exc()}")
            time.sleep(10)
            continue
        res.bursts.setdefault(size, []).append(out)
        log(f"burst {size} ({target.shape}): done {out['done_s']} s after the tick, "
            f"{out['run_details_added']} run rows, {out['early']} early, max lag "
            f"{out['max_lag_from_end_s']}, failures {out['failures']}, max running "
            f"{out['max_running_polled']}/{out['max_running_overlap']}, log stack depth "
            f"{out['log_stack_depth']} crash {out['log_crash']}")  # fmt: skip
        for line in out["log_samples"]:
            log(f"  server log: {line}")
    for task in fillers:
        run_task(task)


# ---------------------------------------------------------------------------------- table


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def _runs(values: list[Any], digits: int = 2) -> str:
    return ", ".join(
        _fmt(v, digits) if isinstance(v, (int, float)) or v is None else str(v) for v in values
    )


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**NO**")


Row = tuple[str, str, str, str, str, str, str]


def shape_rows(args: argparse.Namespace, res: Results, shape: str) -> list[Row]:
    """The rows of one shape: (scenario, case, metric, median, runs, target, met)."""
    rows: list[Row] = []
    only = set(args.only) if shape == "superuser" else set(args.only) & SHAPE_SCENARIOS

    def add(
        scn: str,
        case: str,
        metric: str,
        value: str,
        runs: str = "",
        target: str = "",
        met: str = "",
    ) -> None:
        rows.append((scn, case, metric, value, runs, target, met))

    def unavailable(key: str, scn: str, case: str) -> bool:
        if key in res.unavailable:
            add(scn, case, "not available yet", "n/a", "", "", "n/a")
            return True
        if key in res.errors and not getattr(res, key if key != "anchor" else "anchor"):
            add(scn, case, f"error: {' '.join(res.errors[key].split())[:80]}", "n/a", "", "", "n/a")
            return True
        return False

    if "write" in only and not unavailable("write", "write overhead", ""):
        w = res.write
        for kind, label in (("single", f"single-row txns, {args.write_clients} clients"),
                            ("statement", f"one {args.write_rows:,}-row statement")):  # fmt: skip
            ratios = [r[f"{kind}_ratio"] for r in w]
            m = median(ratios)
            add("write overhead", label, "inserts/s with triggers / without",
                f"{_fmt(m, 3)} ({_fmt(median([r[f'{kind}_triggers'] for r in w]), 0)}/s vs "
                f"{_fmt(median([r[f'{kind}_plain'] for r in w]), 0)}/s)",
                _runs(ratios, 3), ">= 0.5", _met(None if m is None else m >= 0.5))  # fmt: skip
    if "writecost" in only and not unavailable("writecost", "write cost", ""):
        wc = res.writecost
        for kind, label in (("batch", f"{args.writecost_rows:,} meetings in 2,000-row statements"),
                            ("single", f"{args.writecost_single_rows:,} single-row txns, 1 client")):  # fmt: skip
            trig = [r[f"{kind}_triggers_us"] for r in wc]
            plain = [r[f"{kind}_plain_us"] for r in wc]
            add("write cost", label, "us per meeting with our triggers (without)",
                f"{_fmt(median(trig), 1)} ({_fmt(median(plain), 1)})",
                _runs(trig, 1) + " (" + _runs(plain, 1) + ")", "", "")  # fmt: skip
    if "breakdown" in only and res.breakdown:
        b = res.breakdown[0]
        text = "; ".join(
            f"{label} {_fmt(b.get(key), 1)}" for key, label in sc.BREAKDOWN_LABELS if key in b
        )
        add("write cost breakdown", f"{args.breakdown_rows:,} rows, one statement each", f"us per row (median of {args.repeat})",
            text, "", "(why)", "")  # fmt: skip
        text = "; ".join(f"{label} {_fmt(b.get('single_' + key), 0)}" for key, label in sc.SINGLE_LABELS
                         if "single_" + key in b)  # fmt: skip
        add("write cost breakdown", f"{args.breakdown_single_rows:,} single-row txns, 1 client, each",
            f"us per transaction (median of {args.repeat})", text, "", "(why)", "")  # fmt: skip
    if "burst" in only:
        for size in args.burst_sizes:
            runs = res.bursts.get(size, [])
            case = f"{size:,} meetings, one minute"
            if not runs:
                add(
                    "burst", case, f"error: {res.errors.get(f'burst-{size}', 'no run')[:80]}", "n/a"
                )
                continue
            if f"burst-{size}" in res.errors:
                add("burst", case, "a run failed (last error)",
                    " ".join(res.errors[f"burst-{size}"].split())[:300], "", "none", "**NO**")  # fmt: skip
            done = [r["done_s"] for r in runs]
            m = None if any(d is None for d in done) else median(done)
            limit = 10.0 if size <= 20000 else 30.0 if size <= 100000 else None
            add("burst", case, "s from the tick until all done", _fmt(m), _runs(done),
                f"<= {limit:.0f} s" if limit else "", _met(None if limit is None or (m is None and
                                                          all(d is None for d in done)) else
                                                          (m is not None and m <= limit)))  # fmt: skip
            early = [r["early"] for r in runs]
            add(
                "burst",
                case,
                "meetings done before end_time",
                str(sum(early)),
                _runs(early, 0),
                "0",
                _met(sum(early) == 0),
            )
            added = [r["run_details_added"] for r in runs]
            ma = median(added)
            add("burst", case, "rows added to cron.job_run_details", f"{_fmt(ma, 0)} (for {size:,} done)",
                _runs(added, 0), "far fewer than meetings (<= 10%)",
                _met(ma is not None and ma <= 0.1 * size))  # fmt: skip
            add("burst", case, "first job run starts / last completion (s after tick)",
                f"{_fmt(median([r['first_run_start_s'] for r in runs]))} / "
                f"{_fmt(median([r['last_completed_s'] for r in runs]))}",
                _runs([r["last_completed_s"] for r in runs]), "", "")  # fmt: skip
            add("burst", case, "max lag end_time -> done (s); end times spread over (s)",
                f"{_fmt(median([r['max_lag_from_end_s'] for r in runs]))}; "
                f"{_fmt(median([r['spread_s'] for r in runs]), 0)}",
                "", "", "")  # fmt: skip
            add("burst", case, "insert through triggers (us/row)", _fmt(median([r["insert_us_per_row"] for r in runs]), 0),
                _runs([r["insert_us_per_row"] for r in runs], 0), "", "")  # fmt: skip
            failed = [r["runs_failed"] for r in runs]
            add(
                "burst",
                case,
                "failed job runs (all messages)",
                str(sum(failed)),
                _runs(failed, 0),
                "",
                "",
            )
            real = [r.get("runs_failed_real") for r in runs]
            add("burst", case, "failed job runs other than `job canceled`", str(sum(x or 0 for x in real)),
                _runs(real, 0), "0", _met(all(x == 0 for x in real)))  # fmt: skip
            logs = [f"{r.get('log_stack_depth')}/{r.get('log_crash')}" for r in runs]
            add("burst", case, "server log: stack depth / crash lines", logs[-1] if len(set(logs)) == 1 else "varies",
                ", ".join(logs), "0 / 0", _met(all(x == "0/0" for x in logs)))  # fmt: skip
            vac = [r.get("log_stack_depth_autovacuum", 0) for r in runs]
            if any(vac):
                add("burst", case, "of the stack depth lines: autovacuum of cron.job (no job run)",
                    str(sum(vac)), _runs(vac, 0), "", "")  # fmt: skip
            add("burst", case, "job runs at once, max (polled every 0.1 s / from run start and end times)",
                f"{_fmt(median([r.get('max_running_polled') for r in runs]), 0)} / "
                f"{_fmt(median([r.get('max_running_overlap') for r in runs]), 0)}",
                _runs([f"{r.get('max_running_polled')}/{r.get('max_running_overlap')}" for r in runs]),
                "", "")  # fmt: skip
            messages: dict[str, int] = {}
            for r in runs:
                for msg, count in r.get("failures", []):
                    key = " ".join(str(msg).split())[:100]
                    messages[key] = messages.get(key, 0) + int(count)
            if messages:
                add("burst", case, "failure messages (count, all runs)",
                    "; ".join(f"{c} x `{m}`" for m, c in sorted(messages.items(), key=lambda x: -x[1])),
                    "", "", "")  # fmt: skip
    if "recovery" in only and not unavailable(
        "recovery", "recovery", f"{args.recovery_size:,} upcoming, triggers were off"
    ):
        for horizon in args.horizon or [None]:
            case = f"{args.recovery_size:,} upcoming, triggers were off"
            runs = res.recovery
            if args.horizon is not None:
                case += f", over {args.recovery_days:g} days, horizon {horizon or 'none'}"
                runs = [r for r in res.recovery if r.get("horizon") == horizon]
            secs = [r["seconds"] for r in runs]
            m = median(secs)
            ok = all(r["meetings_without_matching_job"] == 0 for r in runs)
            rep = runs[-1]["report"] if runs else {}
            add("recovery", case, "s for scheduler.recover()",
                _fmt(m), _runs(secs), "<= 10 s", _met(m is not None and m <= 10))  # fmt: skip
            if args.horizon is not None:
                added = [r["jobs_registered"] for r in runs]
                add("recovery", case, "jobs registered", _fmt(median(added), 0), _runs(added, 0),
                    "", "")  # fmt: skip
            add("recovery", case, "report / every meeting has its job" + (" (within the horizon; none beyond)" if horizon else ""),
                json.dumps(rep, separators=(",", ":")), "", "all", _met(ok and bool(runs)))  # fmt: skip
    if "inspection" in only and not unavailable(
        "inspection", "inspection", f"{args.inspection_size:,} jobs"
    ):
        secs = [r["seconds"] for r in res.inspection]
        m = median(secs)
        listed = [r["jobs_listed"] for r in res.inspection]
        ex = res.inspection_extra
        add("inspection", f"{args.inspection_size:,} jobs", "s for scheduler-admin list-jobs --json",
            _fmt(m), _runs(secs), "<= 3 s", _met(m is not None and m <= 3))  # fmt: skip
        add("inspection", f"{args.inspection_size:,} jobs", "jobs listed; python start-up (s); select * from scheduler.list_jobs() (s)",
            f"{listed[-1] if listed else 'n/a'}; {_fmt(ex.get('python_startup_s'))}; {_fmt(ex.get('sql_floor_s'))}",
            "", "", "")  # fmt: skip
    if "anchor" in only:
        if "anchor" in res.unavailable:
            add("anchor: APScheduler 3.11", "", "not available (apscheduler not installed)", "n/a")
        for (size, mode, spread), runs in sorted(res.anchor.items()):
            case = f"{size:,} jobs due {'at one instant' if spread == 'instant' else 'over one minute'}"
            label = f"anchor: APScheduler {runs[0]['apscheduler']}, {mode}"
            lost = [r["lost"] for r in runs]
            if mode == "default":
                add(label, case, "updates lost (missed, misfire_grace_time 1 s)", f"{_fmt(median(lost), 0)} of {size:,}",
                    _runs(lost, 0), "", "")  # fmt: skip
                add(label, case, "s from due until every job ran or was missed",
                    _fmt(median([r["processed_s"] for r in runs])), "", "", "")  # fmt: skip
            else:
                done = [r["done_s"] for r in runs]
                add(label, case, "s from due until all done (misfire_grace_time None)",
                    _fmt(median(done)), _runs(done), "", "")  # fmt: skip
                add(label, case, "updates lost", f"{_fmt(median(lost), 0)}", _runs(lost, 0), "", "")
            add(label, case, "add_job into the SQLite store (us/job)",
                _fmt(median([r["add_us_per_job"] for r in runs]), 0), "", "", "")  # fmt: skip
    return rows


def build_table(args: argparse.Namespace, results: dict[str, Results]) -> list[str]:
    """One table for every shape: a shape's row right after the other shape's row of the same
    scenario, case and metric (paired rows), rows only one shape has in their place."""
    per_shape = {shape: shape_rows(args, res, shape) for shape, res in results.items()}
    order: list[tuple[str, str, str]] = []
    by_key: dict[tuple[str, str, str], list[tuple[str, Row]]] = {}
    for shape, rows in per_shape.items():
        last = -1
        for row in rows:
            key = row[:3]
            if key not in by_key:
                by_key[key] = []
                order.insert(last + 1, key)
            last = order.index(key)
            by_key[key].append((shape, row))
    header = ("Scenario", "Case", "Shape", "Metric", "Median", "Runs", "Target", "Met")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for key in order:
        for shape, r in by_key[key]:
            cells = (r[0], r[1], shape, *r[2:])
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    results: dict[str, Results] = {}
    load_start = os.getloadavg()
    started = utcnow()
    t0 = time.perf_counter()
    machine: dict[str, str] = {}
    pg_settings: dict[str, str] = {}
    # One cluster per shape, one after the other (never two bursts at once on 2 shared cores).
    for shape in args.shapes:
        log(f"shape {shape}: starting a throwaway cluster, migrating as the owner of meetings")
        with shape_cluster(shape, profile=args.profile, server=args.server) as (target, _settings):
            log(f"shape {shape}: port {target.cluster.port} ({target.where})")
            with connect(target.admin_dsn) as conn:
                if args.profile:
                    conn.execute("create extension if not exists pg_stat_statements")
                machine = machine or machine_description(conn)
                pg_settings = pg_settings or server_settings(conn)
                has_recover = function_exists(
                    conn, "scheduler.recover(boolean)"
                ) or function_exists(conn, "scheduler.recover(boolean,text)")
                owner = conn.execute(
                    "select relowner::regrole::text, (select rolsuper from pg_roles "
                    "where oid = relowner) from pg_class where oid = 'public.meetings'::regclass"
                ).fetchone()
            log(f"shape {shape}: meetings owned by {owner}; scheduler.recover: {has_recover}")
            results[shape] = Results()
            _TOOK.clear()
            run_all(args, target, results[shape])
    elapsed = time.perf_counter() - t0
    load_end = os.getloadavg()
    table = build_table(args, results)
    errors = {f"{shape}/{k}": v for shape, res in results.items() for k, v in res.errors.items()}
    head = [
        f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min; command: `{command}`; "
        f"load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in load_start)}, "
        f"at end {'/'.join(f'{x:.2f}' for x in load_end)}",
        "Cluster settings: " + ", ".join(f"{k}={v}" for k, v in pg_settings.items()),
        "",
    ]
    print("\n".join(head + table))
    if errors:
        print("\nErrors: " + "; ".join(f"{k}: {' '.join(v.split())}" for k, v in errors.items()))
    raw = {
        "started": started.isoformat(), "elapsed_s": elapsed, "command": command,
        "loadavg_start": load_start, "loadavg_end": load_end,
        "machine": machine, "settings": pg_settings, "args": {k: str(v) for k, v in vars(args).items()},
        "shapes": {
            shape: {
                "write": res.write, "writecost": res.writecost, "breakdown": res.breakdown,
                "bursts": res.bursts, "recovery": res.recovery, "inspection": res.inspection,
                "inspection_extra": res.inspection_extra,
                "anchor": {"|".join(map(str, k)): v for k, v in res.anchor.items()},
                "unavailable": res.unavailable, "errors": res.errors,
            }
            for shape, res in results.items()
        },
    }  # fmt: skip
    if args.json_output:
        args.json_output.parent.mkdir(parents=True, exist_ok=True)
        args.json_output.write_text(json.dumps(raw, indent=1, default=str))
    if args.output:
        md = [
            "# Benchmark results",
            "",
            "## Command",
            "",
            "```",
            command,
            "```",
            "",
            "## Machine",
            "",
        ]
        md += [f"- {k}: {v}" for k, v in machine.items()]
        md += [
            "",
            "## Cluster settings",
            "",
            ", ".join(f"`{k}={v}`" for k, v in pg_settings.items()),
        ]
        md += ["", "## Table", "", *head[:1], "", *table, ""]
        if errors:
            md += [
                "Errors: " + "; ".join(f"{k}: {' '.join(v.split())}" for k, v in errors.items()),
                "",
            ]
        args.output.write_text("\n".join(md))
        log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
