"""The cost of a schema change, side by side: the previous revision against head, in one run.

One throwaway cluster (durable settings), migrated down to the previous revision and up to head
in alternating order, repetition after repetition; each time the same operations on N meetings:

* insert: one ``insert … select`` of N upcoming meetings through the triggers;
* recover: ``scheduler.recover()`` with every job in place (the comparison work);
* list_jobs: ``select count(*) from scheduler.list_jobs()``;
* health: ``select scheduler.health()``;
* complete: one ``update`` moving the N meetings' end time into the past: the BEFORE trigger
  completes them, the AFTER trigger unschedules their jobs (and, from 0004 on, records their
  completion events): a burst's bulk completion, without waiting for a minute;
* due (after an untimed set-up: N new upcoming meetings moved into the past with the triggers
  off, their jobs left in place): one ``scheduler.complete_due_meetings()``, what a run of a
  busy minute does (from 0004 on, it also records their completion events);
* delete: one ``delete`` of the N meetings (the triggers unschedule their jobs).

``--transition memberships`` times the same operations on a registered second table instead
(``public.memberships``, bigint key, ``active`` → ``expired`` at ``expires_at``, registered once
at head and kept through the migrations; previous revision 0006 or later): ``recover``,
``list_jobs`` and health take its name (health: ``scheduler.transition_health()``), and due is
one ``scheduler.complete_transition()`` run, which completes every due row of the transition.

Prints the medians per revision and the ratio head / previous (below 1: head is faster)::

    python -m benchmarks.revisions --size 20000 --repeat 5 [--previous 0001] [--transition memberships]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks.common import benchmark_cluster, connect, log, median, migrate
from scheduler_admin.migrate import alembic_config

OPERATIONS: dict[str, str] = {
    "insert": (
        "insert into public.meetings (title, end_time) "
        "select 'bench', now() + interval '1 day' + g * interval '1 second' "
        "from generate_series(1, %(size)s) g"
    ),
    "recover": "select scheduler.recover()",
    "list_jobs": "select count(*) from scheduler.list_jobs()",
    "health": "select scheduler.health()",
    "complete": "update public.meetings set end_time = now() - interval '1 minute'",
    "due": "select scheduler.complete_due_meetings()",
    "delete": "delete from public.meetings",
}
# untimed, before the operation
SETUP: dict[str, str] = {
    "due": (
        "delete from public.meetings; "
        "insert into public.meetings (title, end_time) "
        "select 'bench', now() + interval '1 day' + g * interval '1 second' "
        "from generate_series(1, %(size)s) g; "
        "set session_replication_role = replica; "
        "update public.meetings set end_time = now() - interval '1 minute'; "
        "set session_replication_role = origin"
    ),
}

# --transition memberships: the same operations on a registered second table
MEMBERSHIPS_TABLE = (
    "create table public.memberships (id bigint generated always as identity primary key, "
    "status text not null default 'active', expires_at timestamptz not null)"
)
MEMBERSHIPS_REGISTER = (
    "select scheduler.add_transition('memberships', 'public.memberships', 'id', 'expires_at', "
    "'status', array['active'], 'expired')"
)
_INSERT_MEMBERSHIPS = (
    "insert into public.memberships (expires_at) "
    "select now() + interval '1 day' + g * interval '1 second' "
    "from generate_series(1, %(size)s) g"
)
TRANSITION_OPERATIONS: dict[str, str] = {
    "insert": _INSERT_MEMBERSHIPS,
    "recover": "select scheduler.recover(false, 'memberships')",
    "list_jobs": "select count(*) from scheduler.list_jobs('memberships')",
    "health": "select scheduler.transition_health('memberships')",
    "complete": "update public.memberships set expires_at = now() - interval '1 minute'",
    "due": "select scheduler.complete_transition('memberships', '0')",
    "delete": "delete from public.memberships",
}
TRANSITION_SETUP: dict[str, str] = {
    "due": (
        "delete from public.memberships; "
        + _INSERT_MEMBERSHIPS
        + "; set session_replication_role = replica; "
        "update public.memberships set expires_at = now() - interval '1 minute'; "
        "set session_replication_role = origin"
    ),
}


def timed(conn: psycopg.Connection[Any], sql: str, size: int) -> float:
    started = time.perf_counter()
    conn.execute(sql.replace("%(size)s", str(size)))  # type: ignore[arg-type]
    return time.perf_counter() - started


def run(
    size: int, repeat: int, previous: str, transition: bool = False
) -> dict[str, dict[str, list[float]]]:
    operations, setup = (
        (TRANSITION_OPERATIONS, TRANSITION_SETUP) if transition else (OPERATIONS, SETUP)
    )
    table = "public.memberships" if transition else "public.meetings"
    results: dict[str, dict[str, list[float]]] = {
        rev: {op: [] for op in operations} for rev in (previous, "head")
    }
    with benchmark_cluster() as (cluster, _settings):
        dsn = cluster.dsn()
        migrate(dsn, "head", down=False)
        if transition:
            with connect(dsn) as conn:
                conn.execute(MEMBERSHIPS_TABLE)
                conn.execute(MEMBERSHIPS_REGISTER)
        current = "head"
        for i in range(repeat):
            order = (previous, "head") if i % 2 == 0 else ("head", previous)
            for revision in order:
                if revision != current:
                    migrate(dsn, revision, down=revision == previous)
                    current = revision
                with connect(dsn) as conn:
                    conn.execute(f"delete from {table}")
                    conn.execute(f"vacuum analyze {table}, cron.job")
                    for op, sql in operations.items():
                        if op in setup:
                            timed(conn, setup[op], size)
                        results[revision][op].append(timed(conn, sql, size))
                log(f"repetition {i + 1}/{repeat} at {revision}: done")
    return results


def table(
    results: dict[str, dict[str, list[float]]], previous: str, size: int, rows: str = "meetings"
) -> str:
    lines = [
        f"| operation ({size:,} {rows}) | {previous} median s | head median s | head / {previous} |",
        "| --- | --- | --- | --- |",
    ]
    for op in results[previous]:
        before, after = median(results[previous][op]), median(results["head"][op])
        ratio = f"{after / before:.2f}" if before and after else "-"
        lines.append(f"| {op} | {before:.3f} | {after:.3f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.revisions", description=__doc__)
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--previous", default="-1", help="alembic revision to compare with head")
    parser.add_argument(
        "--transition",
        choices=["meetings", "memberships"],
        default="meetings",
        help="the rows to time: meetings, or a registered second table (previous 0006 or later)",
    )
    args = parser.parse_args(argv)
    previous = args.previous
    if previous == "-1":
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config())
        head = script.get_revision(script.get_current_head())
        assert head is not None and isinstance(head.down_revision, str)
        previous = head.down_revision
    memberships = args.transition == "memberships"
    if memberships and (not previous.isdigit() or int(previous) < 6):
        parser.error(
            f"--transition memberships needs --previous 0006 or later (got {previous}): "
            "transitions take a name from revision 0006 on"
        )
    results = run(args.size, args.repeat, previous, memberships)
    out(table(results, previous, args.size, args.transition))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
