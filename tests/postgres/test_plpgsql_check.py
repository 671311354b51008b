"""Static analysis of every PL/pgSQL function of ours with plpgsql_check (security finding 9).

On the migrated test database, inside one transaction that is rolled back (no extension, schema,
table or transition of the test survives it, so no catalog comparison of another test sees
them), the test creates the extension plpgsql_check in a schema of its own and checks every
PL/pgSQL function of schema scheduler with ``plpgsql_check_function_tb(..., fatal_errors =>
false, security_warnings => true, performance_warnings => true, ...)``. A trigger function is
checked once per trigger that uses it, with the trigger's relation and transition-table names
(``tgrelid``, ``tgoldtable``, ``tgnewtable`` of pg_trigger: new_meetings/old_meetings on
public.meetings, new_rows/old_rows on a registered table); the generic triggers of a registered
transition are used by no trigger on a fresh database, so the test registers one on a scratch
table first. A trigger function no trigger uses cannot be checked and fails the test.

Every error and every security warning fails the test, listed with function, line, statement
and message. The other warnings (other, extra, performance, compatibility) are printed and do
not fail it: they differ between plpgsql_check 2.3 (PostgreSQL 15, local lane) and 2.8
(PostgreSQL 17, container lane), and say nothing about safety.

A false positive is exempted by a statement pragma, which needs no extension where our SQL runs
(Supabase, users' servers: there it is a constant SELECT) and is understood by plpgsql_check 2.3
and 2.8 alike::

    -- plpgsql_check: <why the value is safe>
    perform 'PRAGMA:disable:security_warnings';
    execute ...;
    perform 'PRAGMA:enable:security_warnings';

The pragma holds until the matching ``enable`` or the end of its block; every ``disable`` of ours
must say why on a comment line right above it (or on its own line) and be enabled again later in
the function (test_every_pragma_of_ours_is_explained_and_closed). Comment options
(``@plpgsql_check_options: security_warnings = false``) are ignored here
(``use_incomment_options => false``): they would exempt a whole function, every later statement
included.

What plpgsql_check accepts as sanitized in EXECUTE (2.3 and 2.8 alike, and the code of 2.10):
a ``format()`` argument under ``%I`` or ``%L`` (never examined), and under ``%s`` a constant, a
CASE, a variable or record field of a non-string type (regclass, regtype, integer...), or a text
variable assigned with ``:=`` from quote_ident/quote_literal/format. Its pitfalls: a positional
``%N$s`` is checked against argument N-1 (``%1$s`` is never checked, ``%2$s`` reports the
argument of ``%1$``), so the test rejects positional ``%s`` in our dynamic SQL
(test_no_positional_s_placeholder_in_our_dynamic_sql); a cast such as ``x::regclass`` or a call
such as ``length(x)`` written inside the ``format()`` call is accepted only when no other argument
of the call is a text value, so assign it to a regclass or integer variable first; an EXECUTE of a
scalar subquery is never accepted.

plpgsql_check missing on the server: the test fails under ``SCHEDULER_REQUIRE_POSTGRES`` (CI)
and is skipped otherwise; install postgresql-<major>-plpgsql-check (scripts/install-postgres.sh,
scripts/build-pg17-image.sh).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest
from pg_helpers import Conn, value
from psycopg import sql
from skip_helpers import require_or_skip

EXTENSION_SCHEMA = "scheduler_test_plpgsql_check"
FAILING_LEVELS = ("error", "security")
# a scratch table with a registered transition, so that the generic trigger functions of
# transitions are used by triggers (with their transition tables) and can be checked
SCRATCH_TABLE = "public.plpgsql_check_lint_rows"
SCRATCH_TRANSITION = "plpgsql_check_lint"

OUR_PLPGSQL_FUNCTIONS = (
    "select p.oid::pg_catalog.int8, p.oid::regprocedure::text, "
    "       p.prorettype = 'pg_catalog.trigger'::regtype, p.prosrc "
    "from pg_catalog.pg_proc p join pg_catalog.pg_language l on l.oid = p.prolang "
    "where p.pronamespace = 'scheduler'::regnamespace and l.lanname = 'plpgsql' "
    "order by 2"
)
TRIGGERS_OF = (
    "select t.tgrelid::pg_catalog.int8, t.tgname::text, t.tgoldtable::text, t.tgnewtable::text "
    "from pg_catalog.pg_trigger t where t.tgfoid = %s::pg_catalog.oid and not t.tgisinternal "
    "order by t.tgrelid::regclass::text, t.tgname"
)
CHECK = (
    "select r.lineno, r.statement, r.sqlstate, r.message, r.detail, r.level, r.position, r.query "
    "from {schema}.plpgsql_check_function_tb("
    "    %s::pg_catalog.oid::pg_catalog.regprocedure, %s::pg_catalog.oid::pg_catalog.regclass, "
    "    fatal_errors => false, other_warnings => true, extra_warnings => true, "
    "    performance_warnings => true, security_warnings => true, "
    "    compatibility_warnings => true, oldtable => %s, newtable => %s, "
    "    use_incomment_options => false) r"
)


@dataclass(frozen=True, order=True)
class Finding:
    function: str
    lineno: int
    level: str
    statement: str
    message: str
    detail: str
    at: str
    trigger: str

    def line(self) -> str:
        where = f"{self.function} line {self.lineno}" if self.lineno else self.function
        if self.statement:
            where += f" ({self.statement})"
        text = f"{where}: {self.level}: {self.message}"
        if self.detail:
            text += f" - {self.detail}"
        if self.at:
            text += f" [at: {self.at}]"
        if self.trigger:
            text += f" [trigger {self.trigger}]"
        return text


def _missing_plpgsql_check(db: Conn, why: str) -> None:
    major = int(value(db, "select current_setting('server_version_num')::int / 10000"))
    message = (
        f"plpgsql_check is not available on this PostgreSQL {major} server ({why}): install "
        f"postgresql-{major}-plpgsql-check (scripts/install-postgres.sh does; the container "
        "lane's image has it: scripts/build-pg17-image.sh)"
    )
    require_or_skip(message)


def _plpgsql_check_schema(db: Conn) -> tuple[str, str]:
    """The schema and version of plpgsql_check in the test database, created in the current
    transaction unless it is there already."""
    row = db.execute(
        "select n.nspname::text, e.extversion from pg_catalog.pg_extension e "
        "join pg_catalog.pg_namespace n on n.oid = e.extnamespace where e.extname = 'plpgsql_check'"
    ).fetchone()
    if row is not None:
        return str(row[0]), str(row[1])
    if not value(
        db,
        "select exists (select from pg_catalog.pg_available_extensions "
        "               where name = 'plpgsql_check')",
    ):
        _missing_plpgsql_check(db, "no extension plpgsql_check in pg_available_extensions")
    try:
        with db.transaction():
            db.execute(sql.SQL("create schema {}").format(sql.Identifier(EXTENSION_SCHEMA)))
            db.execute(
                sql.SQL("create extension plpgsql_check schema {}").format(
                    sql.Identifier(EXTENSION_SCHEMA)
                )
            )
    except psycopg.Error as exc:
        _missing_plpgsql_check(db, f"create extension plpgsql_check: {str(exc).splitlines()[0]}")
    version = value(
        db, "select extversion from pg_catalog.pg_extension where extname = 'plpgsql_check'"
    )
    return EXTENSION_SCHEMA, str(version)


def _register_scratch_transition(db: Conn) -> None:
    """A table owned by the owner of our functions, with a transition: its four triggers."""
    db.execute(
        f"create table {SCRATCH_TABLE} (id bigint primary key, state text not null, "
        "due timestamptz)"
    )
    owner = value(
        db,
        "select pg_catalog.quote_ident(p.proowner::regrole::text) from pg_catalog.pg_proc p "
        "where p.oid = 'scheduler.add_transition'::regproc",
    )
    db.execute(f"alter table {SCRATCH_TABLE} owner to {owner}")
    db.execute(
        "select scheduler.add_transition(%s, %s, 'id', 'due', 'state', array['pending'], 'done')",
        (SCRATCH_TRANSITION, SCRATCH_TABLE),
    )


def _at(query: str | None, position: int | None) -> str:
    """The first line of the query text from the position plpgsql_check points at."""
    if not query or not position:
        return ""
    return query[position - 1 :].lstrip().split("\n", 1)[0].strip()[:60]


def _check(
    db: Conn,
    schema: str,
    oid: int,
    signature: str,
    relid: int,
    trigger: str,
    oldtable: str | None,
    newtable: str | None,
) -> list[Finding]:
    try:
        with db.transaction():  # a savepoint: a function the checker cannot check is a finding
            rows: list[tuple[Any, ...]] = db.execute(
                sql.SQL(CHECK).format(schema=sql.Identifier(schema)),
                (oid, relid, oldtable, newtable),
            ).fetchall()
    except psycopg.Error as exc:
        return [
            Finding(
                signature, 0, "error", "", f"plpgsql_check cannot check it: {exc}", "", "", trigger
            )
        ]
    return [
        Finding(
            signature,
            int(lineno or 0),
            str(level),
            str(statement or ""),
            str(message),
            str(detail or ""),
            _at(query, position),
            trigger,
        )
        for lineno, statement, _sqlstate, message, detail, level, position, query in rows
    ]


def test_every_plpgsql_function_of_ours_passes_plpgsql_check(
    db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    findings: set[Finding] = set()
    with db.transaction(force_rollback=True):
        schema, version = _plpgsql_check_schema(db)
        _register_scratch_transition(db)
        functions = db.execute(OUR_PLPGSQL_FUNCTIONS).fetchall()
        assert functions, "no PL/pgSQL function in schema scheduler"
        checks = 0
        for oid, signature, is_trigger, _source in functions:
            if not is_trigger:
                findings.update(_check(db, schema, oid, signature, 0, "", None, None))
                checks += 1
                continue
            triggers = db.execute(TRIGGERS_OF, (oid,)).fetchall()
            if not triggers:
                findings.add(
                    Finding(
                        signature,
                        0,
                        "error",
                        "",
                        "a trigger function no trigger uses: plpgsql_check needs its relation "
                        "(and transition tables); make this test create a trigger that uses it",
                        "",
                        "",
                        "",
                    )
                )
            for relid, tgname, oldtable, newtable in triggers:
                findings.update(
                    _check(db, schema, oid, signature, relid, tgname, oldtable, newtable)
                )
                checks += 1
        server = value(db, "select current_setting('server_version')")

    # a finding reported for several triggers of a function is listed once, naming them all
    by_trigger: dict[Finding, list[str]] = {}
    for finding in sorted(findings):
        by_trigger.setdefault(replace(finding, trigger=""), []).append(finding.trigger)
    unique = {
        replace(finding, trigger=", ".join(t for t in labels if t))
        for finding, labels in by_trigger.items()
    }
    failing = sorted(f for f in unique if f.level in FAILING_LEVELS)
    reported = sorted(f for f in unique if f.level not in FAILING_LEVELS)
    with capsys.disabled():
        print(
            f"\nplpgsql_check {version} (PostgreSQL {server}): {len(functions)} PL/pgSQL "
            f"functions of schema scheduler, {checks} checks; {len(failing)} errors or security "
            f"warnings, {len(reported)} other warnings (reported, not failing):"
        )
        for finding in reported:
            print(f"  {finding.line()}")
    assert not failing, (
        f"plpgsql_check {version} on PostgreSQL {server}: {len(failing)} errors or security "
        "warnings in our PL/pgSQL functions (make the value provably safe, or exempt a false "
        "positive with a statement pragma and a comment saying why: see this module's "
        "docstring):\n" + "\n".join(f.line() for f in failing)
    )


PRAGMA = re.compile(r"perform\s+'\s*pragma:\s*(disable|enable):\s*(\w+)", re.IGNORECASE)


def test_every_pragma_of_ours_is_explained_and_closed(db: Conn) -> None:
    """Each ``perform 'PRAGMA:disable:<what>'`` in our functions has a comment saying why
    (right above it, or on its line) and a matching ``enable`` later in the function, so that an
    exemption covers the statements it was written for and no later one."""
    problems = []
    exemptions = 0
    for _oid, signature, _is_trigger, source in db.execute(OUR_PLPGSQL_FUNCTIONS).fetchall():
        lines = str(source).split("\n")
        for number, line in enumerate(lines, start=1):
            for match in PRAGMA.finditer(line):
                action, what = match.group(1).lower(), match.group(2).lower()
                if action != "disable":
                    continue
                exemptions += 1
                previous = next(
                    (text.strip() for text in reversed(lines[: number - 1]) if text.strip()), ""
                )
                if "--" not in line and not previous.startswith("--"):
                    problems.append(
                        f"{signature} line {number}: disable:{what} without a comment saying why"
                    )
                rest = "\n".join(lines[number:])
                if not any(
                    m.group(1).lower() == "enable" and m.group(2).lower() == what
                    for m in PRAGMA.finditer(rest)
                ):
                    problems.append(
                        f"{signature} line {number}: disable:{what} never enabled again "
                        f"(perform 'PRAGMA:enable:{what}'; after the statements it is for)"
                    )
    assert not problems, f"{exemptions} plpgsql_check pragmas:\n" + "\n".join(problems)


# format('... %2$s ...'): a positional %s, with or without a width (%2$-10s)
POSITIONAL_S = re.compile(r"%[0-9]+\$-?[0-9]*s")


def test_no_positional_s_placeholder_in_our_dynamic_sql(db: Conn) -> None:
    """plpgsql_check checks a positional ``%N$s`` of format() against argument N-1: ``%1$s``
    is never checked and ``%2$s`` is blamed on the argument of ``%1$``. Our functions write
    ``%s`` without a position (repeat an argument rather than number it), so that the check of
    test_every_plpgsql_function_of_ours_passes_plpgsql_check sees every value spliced as SQL."""
    found = []
    for _oid, signature, _is_trigger, source in db.execute(OUR_PLPGSQL_FUNCTIONS).fetchall():
        for number, line in enumerate(str(source).split("\n"), start=1):
            for match in POSITIONAL_S.finditer(line):
                found.append(f"{signature} line {number}: {match.group(0)} in {line.strip()!r}")
    assert not found, (
        f"{len(found)} positional %s placeholders in our PL/pgSQL (plpgsql_check does not check "
        "them; write %s without a position):\n" + "\n".join(found)
    )
