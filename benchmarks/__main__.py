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
    benchmark_cluster,
    connect,
    function_exists,
    log,
    machine_description,
    median,
    migrate,
    prepare_benchmark_objects,
    server_settings,
    utcnow,
)


def _sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def _words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


SCENARIOS = ["write", "breakdown", "burst", "recovery", "inspection", "anchor"]


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
    breakdown: list[dict[str, float]] = field(default_factory=list)
    bursts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    recovery: list[dict[str, Any]] = field(default_factory=list)
    inspection: list[dict[str, Any]] = field(default_factory=list)
    inspection_extra: dict[str, Any] = field(default_factory=dict)
    anchor: dict[tuple[int, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def build_tasks(args: argparse.Namespace, dsn: str, url: str, res: Results) -> list[Task]:
    tasks: list[Task] = []
    only = set(args.only)

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

            def recovery(rep: int = rep) -> None:
                out = sc.recovery_once(dsn, args.recovery_size)
                res.recovery.append(out)
                log(f"recovery rep {rep + 1}: {out['seconds']:.2f} s, report {out['report']}")

            tasks.append(Task(f"recovery-{rep}", args.recovery_size * 0.0001 + 3,
                              guarded("recovery", recovery), "recovery"))  # fmt: skip
    if "inspection" in only:

        def inspection() -> None:
            order, _ = sc.inspection_probe(url)  # raises NotAvailable before the costly setup
            jobs = sc.setup_jobs_directly(dsn, args.inspection_size)
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


def run_all(args: argparse.Namespace, dsn: str, url: str, res: Results) -> None:
    fillers = build_tasks(args, dsn, url, res)
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
        try:
            out = sc.burst_once(
                dsn, size, rate, min_spread=args.min_spread, timeout=args.burst_timeout
            )
        except Exception as exc:
            res.errors[f"burst-{size}"] = f"{type(exc).__name__}: {exc}"
            log(f"burst {size} failed:\n{traceback.format_exc()}")
            continue
        res.bursts.setdefault(size, []).append(out)
        log(f"burst {size}: done {out['done_s']} s after the tick, {out['run_details_added']} run rows, "
            f"{out['early']} early, max lag {out['max_lag_from_end_s']}")  # fmt: skip
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


def build_table(args: argparse.Namespace, res: Results) -> list[str]:
    rows: list[tuple[str, str, str, str, str, str, str]] = []

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
            add(scn, case, f"error: {res.errors[key][:80]}", "n/a", "", "", "n/a")
            return True
        return False

    if "write" in args.only and not unavailable("write", "write overhead", ""):
        w = res.write
        for kind, label in (("single", f"single-row txns, {args.write_clients} clients"),
                            ("statement", f"one {args.write_rows:,}-row statement")):  # fmt: skip
            ratios = [r[f"{kind}_ratio"] for r in w]
            m = median(ratios)
            add("write overhead", label, "inserts/s with triggers / without",
                f"{_fmt(m, 3)} ({_fmt(median([r[f'{kind}_triggers'] for r in w]), 0)}/s vs "
                f"{_fmt(median([r[f'{kind}_plain'] for r in w]), 0)}/s)",
                _runs(ratios, 3), ">= 0.5", _met(None if m is None else m >= 0.5))  # fmt: skip
    if "breakdown" in args.only and res.breakdown:
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
    if "burst" in args.only:
        for size in args.burst_sizes:
            runs = res.bursts.get(size, [])
            case = f"{size:,} meetings, one minute"
            if not runs:
                add(
                    "burst", case, f"error: {res.errors.get(f'burst-{size}', 'no run')[:80]}", "n/a"
                )
                continue
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
            add("burst", case, "failed job runs", str(sum(failed)), _runs(failed, 0), "", "")
            messages: dict[str, int] = {}
            for r in runs:
                for msg, count in r.get("failures", []):
                    key = " ".join(str(msg).split())[:100]
                    messages[key] = messages.get(key, 0) + int(count)
            if messages:
                add("burst", case, "failure messages (count, all runs)",
                    "; ".join(f"{c} x `{m}`" for m, c in sorted(messages.items(), key=lambda x: -x[1])),
                    "", "", "")  # fmt: skip
    if "recovery" in args.only and not unavailable(
        "recovery", "recovery", f"{args.recovery_size:,} upcoming, triggers were off"
    ):
        secs = [r["seconds"] for r in res.recovery]
        m = median(secs)
        ok = all(r["meetings_without_matching_job"] == 0 for r in res.recovery)
        rep = res.recovery[-1]["report"] if res.recovery else {}
        add("recovery", f"{args.recovery_size:,} upcoming, triggers were off", "s for scheduler.recover()",
            _fmt(m), _runs(secs), "<= 10 s", _met(m is not None and m <= 10))  # fmt: skip
        add("recovery", f"{args.recovery_size:,} upcoming, triggers were off", "report / every meeting has its job",
            json.dumps(rep, separators=(",", ":")), "", "all", _met(ok and bool(res.recovery)))  # fmt: skip
    if "inspection" in args.only and not unavailable(
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
    if "anchor" in args.only:
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
    header = ("Scenario", "Case", "Metric", "Median", "Runs", "Target", "Met")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    res = Results()
    load_start = os.getloadavg()
    started = utcnow()
    t0 = time.perf_counter()
    with benchmark_cluster(profile=args.profile) as (cluster, _settings):
        dsn, url = cluster.dsn(), cluster.url()
        log(f"throwaway cluster on port {cluster.port} ({cluster.root}); migrating")
        migrate(dsn)
        with connect(dsn) as conn:
            if args.profile:
                conn.execute("create extension if not exists pg_stat_statements")
            prepare_benchmark_objects(conn)
            machine = machine_description(conn)
            pg_settings = server_settings(conn)
            has_recover = function_exists(conn, "scheduler.recover(boolean)")
        log(f"scheduler.recover available: {has_recover}")
        run_all(args, dsn, url, res)
    elapsed = time.perf_counter() - t0
    load_end = os.getloadavg()
    table = build_table(args, res)
    head = [
        f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min; command: `{command}`; "
        f"load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in load_start)}, "
        f"at end {'/'.join(f'{x:.2f}' for x in load_end)}",
        "Cluster settings: " + ", ".join(f"{k}={v}" for k, v in pg_settings.items()),
        "",
    ]
    print("\n".join(head + table))
    if res.errors:
        print("\nErrors: " + "; ".join(f"{k}: {v}" for k, v in res.errors.items()))
    raw = {
        "started": started.isoformat(), "elapsed_s": elapsed, "command": command,
        "loadavg_start": load_start, "loadavg_end": load_end,
        "machine": machine, "settings": pg_settings, "args": {k: str(v) for k, v in vars(args).items()},
        "write": res.write, "breakdown": res.breakdown, "bursts": res.bursts, "recovery": res.recovery,
        "inspection": res.inspection, "inspection_extra": res.inspection_extra,
        "anchor": {"|".join(map(str, k)): v for k, v in res.anchor.items()},
        "unavailable": res.unavailable, "errors": res.errors,
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
        if res.errors:
            md += ["Errors: " + "; ".join(f"{k}: {v}" for k, v in res.errors.items()), ""]
        args.output.write_text("\n".join(md))
        log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
