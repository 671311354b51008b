"""docs/transitions.md's "Example: memberships that expire", run as written on a real server: its
table, its ``transitions add`` command, its writes, ``transitions list`` and ``remove``, then the
same registration in SQL. A user registers a second table from that page alone; a row then
expires at its time, and removing the transition leaves the rows as they are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from cli_helpers import run
from docs_helpers import blocks, commands, section
from pg_helpers import (
    Conn,
    Server,
    db_now,
    expected_schedule,
    poll,
    reconcile_job_inactive,
    value,
)

PAGE = "docs/transitions.md"
PREFIX = "memberships-status-"


@pytest.fixture
def cleanup(db: Conn) -> Iterator[Conn]:
    try:
        with reconcile_job_inactive(db):
            yield db
    finally:
        db.execute(
            "select scheduler.remove_transition(name) from scheduler.transitions where not builtin"
        )
        db.execute("drop table if exists public.memberships")


def prefixed_jobs(db: Conn) -> dict[str, str]:
    rows = db.execute(
        "select jobname, schedule from cron.job where jobname like %s", (PREFIX + "%",)
    ).fetchall()
    return {str(name): str(schedule) for name, schedule in rows}


def triggers(db: Conn) -> int:
    return int(
        value(
            db,
            "select count(*) from pg_trigger "
            "where tgrelid = 'public.memberships'::regclass and not tgisinternal",
        )
    )


def test_the_docs_register_memberships_and_they_expire(
    capsys: pytest.CaptureFixture[str], cleanup: Conn, migrated: Server
) -> None:
    db = cleanup
    text = section(PAGE, "Example: memberships that expire")
    create, same_in_sql, writes = blocks(text, "sql")
    register, manage = blocks(text, "console")
    url = ("--database-url", migrated.url)

    db.execute(create)
    (add,) = commands(register, console=True)
    assert add[:3] == ["scheduler-admin", "transitions", "add"]
    code, _out, err = run(capsys, *url, *add[1:])
    assert code == 0, err
    registered = db.execute(
        "select table_name, key_column, time_column, state_column, from_states, to_state, "
        "job_prefix from scheduler.transitions() where name = 'memberships'"
    ).fetchone()
    assert registered == (
        "public.memberships", "id", "expires_at", "status", ["active"], "expired", PREFIX,
    )  # fmt: skip
    assert triggers(db) == 4

    # the page's write: a membership 30 days ahead gets its job, which its select shows
    cursor = db.execute(writes)  # the insert, then the select
    assert cursor.nextset()
    shown = cursor.fetchall()
    (key, expires_at) = db.execute("select id, expires_at from public.memberships").fetchone()  # type: ignore[misc]
    assert shown == [(f"{PREFIX}{key}", expected_schedule(expires_at))]

    # a membership that ends in a few seconds expires at its time (the waker's call, as
    # `scheduler-admin waker --transition memberships` makes it), and its job goes
    now = db_now(db)
    soon = value(
        db,
        "insert into public.memberships (expires_at) values (%s) returning id",
        (now + timedelta(seconds=2),),
    )
    assert f"{PREFIX}{soon}" in prefixed_jobs(db)
    assert poll(
        lambda: value(
            db, "select clock_timestamp() >= expires_at from public.memberships where id = %s",
            (soon,),
        ),
        timeout=10, interval=0.1,
    )  # fmt: skip
    code, _out, err = run(capsys, *url, "waker", "--once", "--transition", "memberships")
    assert code == 0, err
    assert value(db, "select status from public.memberships where id = %s", (soon,)) == "expired"
    assert value(db, "select status from public.memberships where id = %s", (key,)) == "active"
    assert set(prefixed_jobs(db)) == {f"{PREFIX}{key}"}

    # transitions list shows it; transitions remove drops its triggers and jobs, not its rows
    listed, remove = commands(manage, console=True)
    assert listed == ["scheduler-admin", "transitions", "list"]
    code, out, err = run(capsys, *url, *listed[1:])
    assert code == 0, err
    (line,) = [row.split() for row in out.splitlines() if row.startswith("memberships ")]
    assert line[1:3] == ["public.memberships", "id"] and line[-3:] == ["1", "1", "no"]
    assert remove == ["scheduler-admin", "transitions", "remove", "memberships"]
    code, _out, err = run(capsys, *url, *remove[1:])
    assert code == 0, err
    assert prefixed_jobs(db) == {}
    assert triggers(db) == 0
    assert db.execute("select id, status from public.memberships order by id").fetchall() == [
        (key, "active"), (soon, "expired"),
    ]  # fmt: skip

    # the same registration in SQL: the page's select registers it again, with its job
    (result,) = db.execute(same_in_sql).fetchone()  # type: ignore[misc]
    assert {k: result[k] for k in ("name", "table", "job_prefix", "jobs_registered")} == {
        "name": "memberships", "table": "public.memberships", "job_prefix": PREFIX,
        "jobs_registered": 1,
    }  # fmt: skip
    assert prefixed_jobs(db) == {f"{PREFIX}{key}": expected_schedule(expires_at)}

    # "Per transition": each command as written answers for memberships alone (the waker runs
    # in the foreground until stopped: once here)
    (per_transition,) = blocks(section(PAGE, "Per transition"), "console")
    written = commands(per_transition, console=True)
    assert len(written) == 9
    for command in written:
        assert command[0] == "scheduler-admin" and command[-2:] in (
            ["--transition", "memberships"], ["memberships", "--dry-run"],
        ), command  # fmt: skip
        once = ["--once"] if command[1] == "waker" else []
        code, out, err = run(capsys, *url, *command[1:], *once)
        assert code == 0, (command, err)
        assert "Traceback" not in err
        if command[1] == "list-jobs":
            assert f"{PREFIX}{key} " in out and "meeting-status-" not in out
