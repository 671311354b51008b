"""Helpers of the attack tests: tests/postgres/test_attacks.py and
tests/supabase/test_supabase_attacks.py.

The attacks run real SQL as unprivileged roles. Whatever code an attacker manages to run records
``current_user`` in ``public.attack_log``, tries to make the attacker a superuser, and tries to
schedule a pg_cron job named ``evil``: after an attack, the log may name only the attacker, no
role may be a superuser that was not one, and no job named ``evil`` may exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]

ATTACK_LOG = "public.attack_log"
EVIL_JOB = "evil"
# Types our SQL names (declarations, casts, inlined SQL functions). A caller's pg_temp domain of
# the same name wins over pg_catalog's wherever a function does not search pg_catalog first.
PG_TEMP_TYPES = (
    "text",
    "name",
    "uuid",
    "jsonb",
    "json",
    "timestamptz",
    "timestamp",
    "date",
    "int4",
    "int8",
    "float8",
    "bool",
    "interval",
    "regclass",
    "oid",
)
CHECKER = "pg_temp.scheduler_attack"

_ROLE = re.compile(r"[a-z_][a-z0-9_]*")


def _payload(attacker: str) -> str:
    """The body every attack runs: log, try to become superuser, try to schedule a job."""
    assert _ROLE.fullmatch(attacker), attacker
    return f"""
    insert into public.attack_log (who) values (current_user);
    if (select r.rolsuper from pg_catalog.pg_roles r
        where r.rolname operator(pg_catalog.=) current_user) then
        execute 'alter role {attacker} superuser';
    end if;
    begin
        perform cron.schedule('{EVIL_JOB}', '* * * * *', 'select 1');
    exception when others then
        null;
    end;
    """


def create_attack_log(su: Conn) -> None:
    """As a superuser: the table any attack writes to (everyone may insert)."""
    su.execute(f"drop table if exists {ATTACK_LOG}")
    su.execute(
        f"create table {ATTACK_LOG} (who pg_catalog.text not null, "
        "at pg_catalog.timestamptz not null default pg_catalog.clock_timestamp())"
    )
    su.execute(f"grant insert on {ATTACK_LOG} to public")


def drop_attack_log(su: Conn) -> None:
    """As a superuser: remove the log and any job an attack managed to schedule."""
    su.execute(f"drop table if exists {ATTACK_LOG}")
    su.execute("delete from cron.job where jobname = %s", (EVIL_JOB,))


def dsn_as(server: Any, role: str) -> str:
    """The test server's DSN, logged in as another role (the server's ``dsn`` is the superuser
    postgres's)."""
    return str(server.dsn).replace("user=postgres", f"user={role}")


def assert_no_escalation(su: Conn, attacker: str) -> None:
    """The attack code ran as the attacker only, gained nothing and scheduled nothing."""
    assert not is_superuser(su, attacker), f"{attacker} became a superuser"
    assert logged_users(su) <= {attacker}, "the attack code ran as another role"
    assert evil_jobs(su) == [], "the attack code scheduled a pg_cron job"


def logged_users(su: Conn) -> set[str]:
    """Every current_user the attack code ran as."""
    return {who for (who,) in su.execute(f"select who from {ATTACK_LOG}")}


def evil_jobs(su: Conn) -> list[tuple[str, str]]:
    """(username, command) of every job named evil: an attack scheduled it."""
    return su.execute(
        "select username, command from cron.job where jobname = %s", (EVIL_JOB,)
    ).fetchall()


def is_superuser(su: Conn, role: str) -> bool:
    row = su.execute("select rolsuper from pg_roles where rolname = %s", (role,)).fetchone()
    assert row is not None, f"no role {role}"
    return bool(row[0])


def arm_pg_temp_domains(
    conn: Conn, su: Conn, attacker: str, types: tuple[str, ...] = PG_TEMP_TYPES
) -> None:
    """As the attacker on conn: create pg_temp domains named like the pg_catalog types, whose
    check runs the attack payload. Then prove the trap is live in the attacker's own session."""
    conn.execute(
        f"create function {CHECKER}(x anyelement) returns pg_catalog.bool "
        f"language plpgsql as $attack$ begin {_payload(attacker)} return true; end $attack$"
    )
    for type_name in types:
        conn.execute(
            f"create domain pg_temp.{type_name} as pg_catalog.{type_name} check ({CHECKER}(value))"
        )
    # a type name looked up in the search path finds pg_temp's first: the checker runs here as
    # the attacker (quoted, so that a keyword such as interval is looked up too)
    count = f"select count(*) from {ATTACK_LOG} where who = %s"
    before = su.execute(count, (attacker,)).fetchone()
    conn.execute(f'select null::"{types[0]}"')
    assert su.execute(count, (attacker,)).fetchone() != before, "the pg_temp domains do not fire"


def create_trigger_function(conn: Conn, name: str, attacker: str) -> str:
    """As the role of conn: a security-invoker trigger function that runs the attack payload
    with the rights of whoever fires it."""
    conn.execute(
        f"create function {name}() returns trigger language plpgsql as $attack$ "
        f"begin {_payload(attacker)} return new; end $attack$"
    )
    return name


def create_pg_temp_trigger_function(conn: Conn, attacker: str) -> str:
    """As the attacker on conn: a trigger function in pg_temp that runs the attack payload.
    It needs no CREATE on any schema, and it fires in every session while conn is open."""
    return create_trigger_function(conn, "pg_temp.scheduler_attack_trigger", attacker)


def run_job_as_pg_cron(su: Conn, dsn_of: Callable[[str], str], jobname: str) -> str:
    """Run a job's command the way pg_cron does: over a new connection logged in as the job's
    username, the whole command as one simple query. Returns that username."""
    row = su.execute(
        "select username, command from cron.job where jobname = %s", (jobname,)
    ).fetchone()
    assert row is not None, f"no job {jobname}"
    username, command = row
    with psycopg.connect(dsn_of(username), autocommit=True) as conn:
        conn.execute(command)
    return str(username)


def make_overdue(su: Conn, meeting_id: object) -> None:
    """As a superuser: move an upcoming meeting's end time into the past without firing any
    trigger, so that its job (still scheduled for the old time) has something to complete."""
    with su.transaction():
        su.execute("set local session_replication_role = replica")
        su.execute(
            "update public.meetings set end_time = now() - interval '1 minute' where id = %s",
            (meeting_id,),
        )
