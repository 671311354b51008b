"""The cost of a Prometheus scrape: ``scheduler.metrics()`` against ``scheduler.health()``, side
by side in one run.

One throwaway cluster (durable settings, the ``superuser`` shape unless ``--shape supabase``),
migrated to head, holding what a busy installation keeps:

* ``--upcoming`` upcoming meetings (default 100,000) with their jobs (set up fast as the
  inspection scenario does: meetings inserted with the triggers off, jobs inserted into
  ``cron.job`` in one statement);
* ``--events`` completion events kept (default 100,000: about a week of retention at ten
  completions a minute), for as many done meetings, spread over the last 6 days, by path
  (waker 60 %, job 25 %, sweep 5 %, reconcile 4 %, recover 3 %, write 3 %) with a lateness
  typical of each path; webhooks on: 98 % delivered, 1 % failed after 8 attempts, 1 % pending
  (the backlog); one delivery attempt row per delivered event (5 % of them after a retry) and
  8 per failed event;
* the run history of those 6 days in ``cron.job_run_details``: one reconcile run a minute, one
  run per event of path ``job``, 40 failed runs of meeting jobs (30 of meetings done since,
  10 of meetings still upcoming), 10 ``job canceled`` runs and 5 failed reconcile runs
  followed by successful ones.

Events, attempts and run history are inserted directly (benchmark-only shortcuts; the product
writes them as it completes meetings, delivers webhooks and runs jobs). While measuring, the
benchmark holds the advisory lock the reconcile job skips on, so no reconcile run competes.

Then, alternating the order each repetition (``--repeat``, default 7; one warm-up call of each
first, not counted): ``select scheduler.metrics()`` and ``select scheduler.health()`` as the
owner of ``public.meetings``, and a whole scrape in Python (``PostgresBackend.metrics()`` and
``scheduler_admin.metrics.render_data``, the connection made beforehand). Prints the medians
and the ratio metrics / health; checks that metrics() counted what was seeded (exit 1 if not)::

    python -m benchmarks.metrics [--upcoming 100000 --events 100000 --repeat 7]

Progress goes to stderr, the table to stdout, raw numbers to ``benchmarks/out/metrics.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks.common import (
    REPO_ROOT,
    SHAPES,
    Target,
    connect,
    function_exists,
    log,
    machine_description,
    median,
    shape_cluster,
)
from benchmarks.scenarios import setup_jobs_directly

UTC = dt.timezone.utc
REPAIR_LOCK = "select pg_advisory_lock(hashtext('scheduler.repair'))"
REPAIR_UNLOCK = "select pg_advisory_unlock(hashtext('scheduler.repair'))"

# path, share of the events, lateness in seconds as SQL of r (uniform in [0, 1))
PATH_MIX: list[tuple[str, float, str]] = [
    ("waker", 0.60, "0.005 + r * 0.1"),
    ("job", 0.25, "0.3 + r * 59.7"),
    ("sweep", 0.05, "0.01 + r * 1.0"),
    ("reconcile", 0.04, "60 + r * 60"),
    ("recover", 0.03, "120 + r * 3480"),
    ("write", 0.03, "r * 600"),
]
DAYS = 6  # inside the default history retention (7 days): the reconcile job keeps them


def _path_case() -> str:
    """SQL: the path of an event from its uniform ``p`` (the mix above)."""
    parts, edge = [], 0.0
    for path, share, _ in PATH_MIX:
        edge += share
        parts.append(f"when p < {edge:.4f} then '{path}'")
    return "case " + " ".join(parts[:-1]) + f" else '{PATH_MIX[-1][0]}' end"


def _lateness_case() -> str:
    return (
        "case path " + " ".join(f"when '{path}' then {expr}" for path, _, expr in PATH_MIX) + " end"
    )


def seed_history(admin: psycopg.Connection[Any], owner_name: str, events: int) -> dict[str, int]:
    """Done meetings, their completion events, delivery attempts and the run history."""
    admin.execute(
        "truncate scheduler.completion_events, scheduler.webhook_attempts, "
        "scheduler.metric_totals restart identity cascade"
    )
    admin.execute("update scheduler.settings set webhooks = true")
    admin.execute("select setseed(0.13)")
    with admin.transaction():
        admin.execute("set local session_replication_role = replica")
        admin.execute(
            "create temporary table seed on commit drop as "
            "select i, gen_random_uuid() as id, "
            f"  now() - interval '{DAYS} days' * (1 - i::float8 / {events}) as end_time, "
            "  random() as p, random() as r, random() as d "
            f"from generate_series(1, {int(events)}) i"
        )
        admin.execute(
            f"create temporary table seed2 on commit drop as select s.*, {_path_case()} as path from seed s"
        )
        admin.execute(
            "insert into public.meetings (id, title, start_time, end_time, status) "
            "select id, 'done', end_time - interval '30 minutes', end_time, 'done' from seed2"
        )
        admin.execute(
            "insert into scheduler.completion_events "
            "(meeting_id, end_time, completed_at, path, delivery, attempts, next_attempt_at, "
            " delivered_at, last_error) "
            "select id, end_time, end_time + make_interval(secs => lateness), path, delivery, "
            "  case delivery when 'delivered' then 1 when 'failed' then 8 else 0 end, "
            "  case delivery when 'pending' then end_time + make_interval(secs => lateness) end, "
            "  case delivery when 'delivered' then end_time + make_interval(secs => lateness + 0.2) end, "
            "  case delivery when 'failed' then 'HTTP 500' end "
            f"from (select s.*, {_lateness_case()} as lateness, "
            # the newest 1 % wait for delivery (the backlog), 1 % failed, the rest delivered
            f"  case when i > {events} - {max(1, events // 100)} then 'pending' "
            "       when d < 0.01 then 'failed' else 'delivered' end as delivery "
            "  from seed2 s) x order by i"
        )
        # attempts: one per delivered event (5 % after one retry), 7 retries + 1 failure per
        # failed event
        admin.execute(
            "insert into scheduler.webhook_attempts (event_id, attempt, attempted_at, outcome, status_code, error) "
            "select e.event_id, a.n, e.completed_at + a.n * interval '2 seconds', "
            "  case when e.delivery = 'failed' and a.n = 8 then 'failed' "
            "       when e.delivery = 'failed' or a.n < a.last then 'retry' else 'delivered' end, "
            "  case when e.delivery = 'delivered' and a.n = a.last then 200 else 503 end, "
            "  case when e.delivery = 'delivered' and a.n = a.last then null else 'HTTP 503' end "
            "from scheduler.completion_events e "
            "cross join lateral (select g as n, "
            "  case when e.delivery = 'failed' then 8 when mod(e.event_id, 20) = 0 then 2 else 1 end as last "
            "  from generate_series(1, case when e.delivery = 'failed' then 8 "
            "       when mod(e.event_id, 20) = 0 then 2 else 1 end) g) a "
            "where e.delivery in ('delivered', 'failed')"
        )
        reconcile = admin.execute(
            "select jobid, command from cron.job where jobname = 'meeting-status-reconcile'"
        ).fetchone()
        assert reconcile is not None, "no reconcile job"
        job_id, reconcile_command = reconcile
        run = (
            "insert into cron.job_run_details "
            "(jobid, job_pid, database, username, command, status, return_message, start_time, end_time) "
        )
        # the reconcile job once a minute for DAYS days (5 of its runs failed, the next one
        # succeeded: retried)
        admin.execute(
            run + "select %s, 0, current_database(), %s, %s, "
            "  case when mod(g, 1700) = 0 then 'failed' else 'succeeded' end, "
            "  case when mod(g, 1700) = 0 then 'canceling statement due to lock timeout' else '1 row' end, "
            "  t, t + interval '40 milliseconds' "
            f"from generate_series(1, {DAYS * 1440}) g, "
            f"  lateral (select now() - interval '{DAYS} days' + g * interval '1 minute' t) s "
            "order by g",
            (job_id, owner_name, reconcile_command),
        )
        # one succeeded run per completion by a meeting's job
        admin.execute(
            run + "select 1000000 + e.event_id, 0, current_database(), %s, "
            "  scheduler.job_command(e.meeting_id), 'succeeded', '1 row', "
            "  e.completed_at, e.completed_at + interval '15 milliseconds' "
            "from scheduler.completion_events e where e.path = 'job' order by e.completed_at",
            (owner_name,),
        )
        # failed runs of meeting jobs: 30 of meetings done since (retried), then 10 pending
        # runs dropped because their job was removed ('job canceled': not failures) ...
        admin.execute(
            run + "select 1000000 + e.event_id, 0, current_database(), %s, "
            "  scheduler.job_command(e.meeting_id), 'failed', "
            "  case when n <= 30 then 'canceling statement due to lock timeout' "
            "       else 'job canceled' end, "
            "  e.end_time + interval '1 second', e.end_time + interval '2 seconds' "
            "from (select e.*, row_number() over (order by e.event_id) n "
            "      from scheduler.completion_events e where e.path = 'job') e "
            "where n <= 40 order by e.event_id",
            (owner_name,),
        )
        # ... and 10 of meetings still upcoming (not retried)
        admin.execute(
            run + "select j.jobid, 0, current_database(), %s, j.command, 'failed', "
            "  'canceling statement due to lock timeout', now() - interval '1 hour', "
            "  now() - interval '1 hour' + interval '1 second' "
            "from cron.job j where j.jobname ~ '^meeting-status-[0-9a-f-]{36}$' order by j.jobid limit 10",
            (owner_name,),
        )
    admin.execute(
        "vacuum analyze public.meetings, cron.job, cron.job_run_details, "
        "scheduler.completion_events, scheduler.webhook_attempts, scheduler.metric_totals"
    )

    def count(sql: str) -> int:
        row = admin.execute(sql).fetchone()
        return int(row[0]) if row else 0

    return {
        "events": count("select count(*) from scheduler.completion_events"),
        "attempts": count("select count(*) from scheduler.webhook_attempts"),
        "run_details": count("select count(*) from cron.job_run_details"),
        "done_meetings": count("select count(*) from public.meetings where status = 'done'"),
        "attempt_failures": count(
            "select count(*) from scheduler.webhook_attempts where outcome <> 'delivered'"
        ),
    }


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(
    target: Target, repeat: int
) -> tuple[dict[str, list[float]], dict[str, Any], dict[str, float]]:
    from scheduler_admin.backends.postgres import PostgresBackend
    from scheduler_admin.metrics import render_data

    results: dict[str, list[float]] = {"metrics": [], "health": [], "scrape": []}
    backend = PostgresBackend(target.url)
    with connect(target.dsn) as conn:

        def call(function: str) -> Any:
            row = conn.execute(f"select scheduler.{function}()").fetchone()
            assert row is not None
            return row[0]

        def scrape() -> None:
            render_data(backend.metrics())

        ops: dict[str, Callable[[], Any]] = {
            "metrics": lambda: call("metrics"),
            "health": lambda: call("health"),
            "scrape": scrape,
        }
        first = {name: timed(op) for name, op in ops.items()}  # warm-up, not counted
        sample = call("metrics")
        for i in range(repeat):
            order = list(ops) if i % 2 == 0 else list(reversed(ops))
            for name in order:
                results[name].append(timed(ops[name]))
            log(
                f"repetition {i + 1}/{repeat}: "
                + ", ".join(f"{n} {results[n][-1]:.3f} s" for n in ops)
            )
    backend.close()
    return results, sample, first


def checks(
    sample: dict[str, Any], upcoming: int, seeded: dict[str, int]
) -> list[tuple[str, Any, Any]]:
    """(what, expected, got) for what metrics() must have counted."""
    completions = sum(int(v) for v in sample["completions"].values())
    backlog = max(1, seeded["events"] // 100)
    return [
        ("upcoming_meetings", upcoming, sample["upcoming_meetings"]),
        ("jobs", upcoming, sample["jobs"]),
        ("completions (all paths)", seeded["events"], completions),
        ("lateness count", seeded["events"], sample["lateness"]["count"]),
        ("webhook backlog", backlog, sample["webhooks"]["backlog"]),
        (
            "delivered + failed + backlog",
            seeded["events"],
            sample["webhooks"]["delivered"]
            + sample["webhooks"]["failed"]
            + sample["webhooks"]["backlog"],
        ),
        (
            "webhook attempt failures",
            seeded["attempt_failures"],
            sample["webhooks"]["attempt_failures"],
        ),
        # 30 + 10 of meeting jobs, 5 of the reconcile job ('job canceled' is no failure)
        ("failed runs (kept)", 30 + 10 + 5, sample["failed_runs"]),
        ("retried runs", 30 + 5, sample["retried_runs"]),
    ]


def table(
    results: dict[str, list[float]], upcoming: int, seeded: dict[str, int], first: dict[str, float]
) -> str:
    case = f"{upcoming:,} upcoming, {seeded['events']:,} events, {seeded['attempts']:,} attempts, {seeded['run_details']:,} runs"
    labels = {
        "metrics": "select scheduler.metrics()",
        "health": "select scheduler.health()",
        "scrape": "PostgresBackend.metrics() + render_data (a scrape, connected)",
    }
    lines = [
        "| Case | Call | Median (s) | Runs (s) | First call (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, label in labels.items():
        runs = ", ".join(f"{v:.3f}" for v in results[name])
        lines.append(
            f"| {case} | {label} | {median(results[name]):.3f} | {runs} | {first[name]:.3f} |"
        )
    m, h = median(results["metrics"]), median(results["health"])
    ratio = f"{m / h:.2f}" if m and h else "-"
    lines.append(f"| {case} | metrics() / health() | {ratio} |  |  |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.metrics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--upcoming", type=int, default=100_000, help="upcoming meetings with their jobs"
    )
    parser.add_argument("--events", type=int, default=100_000, help="completion events kept")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (medians reported)")
    parser.add_argument("--shape", choices=SHAPES, default="superuser")
    args = parser.parse_args(argv)
    started = dt.datetime.now(UTC)
    load_start = loadavg()
    with (
        shape_cluster(args.shape) as (target, _settings),
        connect(target.admin_dsn) as admin,
        connect(target.dsn) as owner,
    ):
        for signature in ("scheduler.metrics()", "scheduler.health()"):
            if not function_exists(owner, signature):
                print(f"Error: {signature} does not exist in this checkout", file=sys.stderr)
                return 1
        machine = machine_description(admin)
        owner_row = owner.execute("select current_user").fetchone()
        assert owner_row is not None
        log(f"setting up {args.upcoming:,} upcoming meetings with their jobs")
        setup_jobs_directly(target.admin_dsn, args.upcoming, target.dsn)
        log(f"seeding {args.events:,} completion events, their attempts and the run history")
        seeded = seed_history(admin, str(owner_row[0]), args.events)
        log(f"seeded: {seeded}")
        admin.execute(REPAIR_LOCK)  # the reconcile job skips while we measure
        try:
            results, sample, first = measure(target, args.repeat)
        finally:
            admin.execute(REPAIR_UNLOCK)
        load = f"{load_start} at the start, {loadavg()} at the end"
    verdicts = checks(sample, args.upcoming, seeded)
    out_dir = REPO_ROOT / "benchmarks" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "args": vars(args),
                "machine": machine,
                "seeded": seeded,
                "results": results,
                "first": first,
                "metrics_sample": sample,
                "checks": verdicts,
            },
            indent=2,
            default=str,
        )
    )
    print(f"Run {started:%Y-%m-%d %H:%M} UTC, shape {args.shape}, load average (1/5/15 min) {load}")
    print()
    print(table(results, args.upcoming, seeded, first))
    print()
    failed = [(what, want, got) for what, want, got in verdicts if want != got]
    for what, want, got in verdicts:
        print(
            f"- {what}: expected {want}, metrics() says {got}{'' if want == got else '  **MISMATCH**'}"
        )
    return 1 if failed else 0


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return "/".join(f.read().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
