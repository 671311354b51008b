"""Registered timed transitions on SQLite: the twin of ``scheduler.add_transition()``,
``remove_transition()``, ``transitions()``, ``complete_transition()`` and the repair of every
transition by ``recover()``/``reconcile()`` (revision 0005), ``named_transitions()`` and
doctor's ``transition_health()``; and of ``scheduler.wake()``, which completes the due rows of
meetings and of every other transition for the waker.

A transition says: rows of a table whose state column holds one of ``from_states`` get
``to_state`` at the time in their time column. The registry is the table
``scheduler_transitions`` (``sql/sqlite/10_schema.sql``); ``meetings`` is its builtin row, served
by the meetings machinery (``30_triggers.sql``, :mod:`scheduler_admin.sqlite.functions`), never
by this module's triggers.

SQLite triggers cannot take their table or columns as parameters, so each registered table gets
five triggers generated here from the registry row (:func:`trigger_sql`). Only validated
identifiers, always quoted (:func:`quote_ident`), and the transition's own states and name, as
SQL string literals (:func:`quote_text`), are spliced into them; no row data ever is. They do
for a pending row (state in ``from_states``) what the meetings triggers do for a pending
meeting: a missing or unparsable time refuses the write (``RAISE(ABORT)``: nothing written), a
time already passed gives ``to_state`` at once and no job, otherwise one job in ``cron_job``
named ``<job_prefix><key>`` with the five-field UTC schedule of the first minute at or after the
time and the command ``complete_transition('<name>', '<key>')``; a row that leaves the pending
states, changes its key or is deleted loses its job. Paused (``scheduler_settings.enabled = 0``,
or the transition paused by name: its ``paused`` flag, revision 0006): no job is registered;
jobs are still removed. Unlike meetings, the application's time column is
never rewritten (no UTC normalisation). Every completion of a row records its completion event
(revision 0007, :func:`scheduler_admin.sqlite.functions.record_row_completions`): path ``write``
from the triggers, else the path of the caller of :func:`complete_due_transition`.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from scheduler_admin import cron
from scheduler_admin.core import (
    BUILTIN,
    JOB_PREFIX,
    RECONCILE_JOB,
    Job,
    Transition,
    TransitionReport,
    Wake,
    plural,
)
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.sqlite import safety
from scheduler_admin.sqlite.connection import from_db_time, iso, iso_text, to_db_time
from scheduler_admin.sqlite.functions import (
    Completion,
    complete_due_meetings,
    horizon_of,
    next_end_time,
    record_row_completions,
    statuses,
    transition_active,
)

if TYPE_CHECKING:  # Python 3.11+; the annotations are strings, never evaluated at run time
    from typing import NotRequired

log = logging.getLogger(__name__)
T = TypeVar("T")

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
PREFIX_RE = re.compile(r"[a-z][a-z0-9-]*-\Z")
TRIGGER_KINDS = ("before_insert", "before_update", "after_insert", "after_update", "after_delete")
# Tables of ours (and SQLite's) that no transition may be registered on.
_RESERVED_TABLES = re.compile(r"(?:scheduler_|cron_job|sqlite_)", re.IGNORECASE)
_COMMAND = re.compile(r"complete_transition\('([a-z][a-z0-9_]{0,39})', '((?:[^']|'')*)'\)\Z", re.S)
TIME_HINT = (
    "expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), "
    "e.g. 2026-12-01T15:30:00Z"
)


# -- quoting and the SQL shared with the meetings --------------------------------------------


def quote_ident(name: str) -> str:
    """An SQL identifier, always quoted (``"`` doubled inside)."""
    return '"' + name.replace('"', '""') + '"'


def quote_text(value: str) -> str:
    """An SQL string literal (``'`` doubled inside), as SQLite's quote() writes text."""
    return "'" + value.replace("'", "''") + "'"


def finer_fraction_sql(time: str) -> str:
    """True when the value ``time`` (an SQL expression) is ISO-8601 text (a ``.`` at position
    20) with a nonzero fraction digit beyond the third that SQLite dropped (its first three
    digits are the milliseconds SQLite kept): SQLite keeps milliseconds only, so such a time,
    e.g. 09:26:00.0004, reads as 09:26:00.000 although it is later. The condition of the
    meetings' after triggers that round such an end_time up to the next millisecond
    (sql/sqlite/30_triggers.sql), written the same way (kept identical by
    tests/unit/test_sqlite_transition_sql.py); a zone suffix (Z, +02:00) may follow the
    digits."""
    return (
        f"typeof({time}) = 'text' AND substr({time}, 20, 1) = '.'\n"
        f"       AND length(rtrim(substr({time}, 24, length(substr({time}, 21))\n"
        f"                  - length(ltrim(substr({time}, 21), '0123456789'))\n"
        "                  - 3), '0')) > 0\n"
        f"       AND substr(strftime('%f', {time}), 4) = substr({time}, 21, 3)"
    )


def job_minute_sql(time: str, *, finer_fraction: bool = True) -> str:
    """The first UTC minute at or after the time ``time`` (an SQL expression) as
    ``YYYY-MM-DD HH:MM:00``, so a job never fires before its time.

    ``finer_fraction=False`` gives the rule of the view ``scheduler_meeting_jobs``
    (sql/sqlite/20_views.sql), written the same way: a time at exactly :00.000 (as SQLite reads
    it, milliseconds only) stays in its minute, anything later rounds up. The meetings can use
    it because their triggers round a finer fraction up to the next millisecond first; a
    transition never rewrites the application's time column, so its rule (the default) also
    rounds up a time at :00.000 whose text has a nonzero digit beyond the third
    (:func:`finer_fraction_sql`), e.g. 09:26:00.0004 gets 09:27 like on PostgreSQL.
    tests/unit/test_sqlite_transition_sql.py keeps both relations. The triggers of revision
    0005 (the downgrade of 0006 re-creates them) used the view's rule."""
    on_the_minute = f"strftime('%f', {time}) = '00.000'"
    if finer_fraction:
        on_the_minute += f"\n      AND NOT ({finer_fraction_sql(time)})"
    return (
        f"CASE WHEN {on_the_minute}\n"
        f"     THEN strftime('%Y-%m-%d %H:%M:00', {time})\n"
        f"     ELSE datetime(strftime('%Y-%m-%d %H:%M:00', {time}), '+1 minute')\n"
        "END"
    )


def schedule_sql(minute: str) -> str:
    """The five-field cron expression (minute hour day month *, no leading zeros) of the minute
    ``minute`` (an SQL expression, see :func:`job_minute_sql`): the schedule column of the view
    ``scheduler_meeting_jobs`` (sql/sqlite/20_views.sql), written the same way."""
    return (
        f"CAST(strftime('%M', {minute}) AS INTEGER) || ' '\n"
        f"    || CAST(strftime('%H', {minute}) AS INTEGER) || ' '\n"
        f"    || CAST(strftime('%d', {minute}) AS INTEGER) || ' '\n"
        f"    || CAST(strftime('%m', {minute}) AS INTEGER) || ' *'"
    )


def invalid_time_sql(time: str) -> str:
    """True when the non-null value ``time`` (an SQL expression) is no ISO-8601 time: the
    condition of the meetings' before triggers on ``NEW.end_time`` (sql/sqlite/30_triggers.sql),
    written the same way (kept identical by tests/unit/test_sqlite_transition_sql.py)."""
    return (
        f"(typeof({time}) <> 'text'\n"
        f"    OR {time} NOT GLOB "
        "'[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]*'\n"
        f"    OR julianday({time}) IS NULL\n"
        f"    OR date(julianday(substr({time}, 1, 10))) IS NOT substr({time}, 1, 10)\n"
        f"    OR substr({time}, 12, 2) > '23')"
    )


_ENABLED_SQL = "COALESCE((SELECT s.enabled FROM scheduler_settings s WHERE s.singleton = 1), 1) = 1"


def active_sql(name: str) -> str:
    """The condition on which the triggers of the transition ``name`` register a job: the
    scheduler is enabled and the transition is not paused by name (revision 0006; the twin of
    scheduler.transition_active()). The meetings triggers (sql/sqlite/30_triggers.sql) write it
    for meetings, the same way (kept identical by tests/unit/test_sqlite_transition_sql.py)."""
    return (
        f"{_ENABLED_SQL}\n"
        "       AND COALESCE((SELECT p.paused FROM scheduler_transitions p "
        f"WHERE p.name = {quote_text(name)}), 0) = 0"
    )


def beyond_horizon_sql(name: str, time: str) -> str:
    """Whether the time ``time`` (SQL) of a row of the transition ``name`` is beyond its job
    horizon (revision 0011, scheduler_horizons: its own, else the default '*'; false without
    one). The triggers register a job only when it is not, and remove the job of a row moved
    beyond it; the meetings triggers (sql/sqlite/30_triggers.sql) write it for meetings."""
    return (
        f"COALESCE(julianday({time}) > (SELECT julianday('now') + h.horizon_seconds / 86400.0\n"
        "                 FROM scheduler_horizons h\n"
        f"                WHERE h.transition IN ({quote_text(name)}, '*')\n"
        "                ORDER BY h.transition = '*' LIMIT 1), 0)"
    )


def transition_command(name: str, key: str) -> str:
    """The command of a row's job: ``complete_transition('<name>', '<key>')``, both SQL
    literals (what the triggers build with quote())."""
    return f"complete_transition({quote_text(name)}, {quote_text(key)})"


def parse_transition_command(command: str | None) -> tuple[str, str] | None:
    """(name, key) of a ``complete_transition('<name>', '<key>')`` command, else None; as strict
    as :func:`scheduler_admin.sqlite.functions.parse_complete_command`."""
    if not command:
        return None
    match = _COMMAND.match(command)
    if match is None:
        return None
    return match[1], match[2].replace("''", "'")


# -- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One non-builtin row of ``scheduler_transitions``."""

    name: str
    table: str
    key: str
    time: str
    state: str
    from_states: tuple[str, ...]
    to_state: str
    prefix: str
    paused: bool = False  # paused by name (revision 0006)

    # SQL fragments, from validated identifiers (quoted) and the states (literals)
    @property
    def qtable(self) -> str:
        return quote_ident(self.table)

    def col(self, column: str, alias: str = "") -> str:
        return (alias + "." if alias else "") + quote_ident(column)

    def pending(self, state: str) -> str:
        """``state`` (an SQL expression) is one of from_states."""
        return f"{state} IN ({', '.join(quote_text(s) for s in self.from_states)})"

    def trigger(self, kind: str) -> str:
        return f"scheduler_{self.name}_{kind}"


def _spec(row: sqlite3.Row) -> Spec:
    return Spec(
        name=str(row["name"]),
        table=str(row["table_name"]),
        key=str(row["key_column"]),
        time=str(row["time_column"]),
        state=str(row["state_column"]),
        from_states=tuple(str(s) for s in json.loads(row["from_states"])),
        to_state=str(row["to_state"]),
        prefix=str(row["job_prefix"]),
        # the column of revision 0006 (the migration reads the registry of 0005 too)
        paused="paused" in row.keys() and bool(row["paused"]),  # noqa: SIM118 (a Row)
    )


def other_transitions(conn: sqlite3.Connection) -> list[Spec]:
    """Every non-builtin transition, by name."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row  # the migrations' connection has none
    rows = cursor.execute(
        "SELECT * FROM scheduler_transitions WHERE builtin = 0 ORDER BY name"
    ).fetchall()
    return [_spec(row) for row in rows]


def named_transitions(conn: sqlite3.Connection, name: str | None = None) -> list[Spec]:
    """Twin of scheduler.named_transitions() in sql/postgres/45_transitions.sql: the
    transitions but the builtin one whose table still exists, paused or not, by name: all of
    them (None), or the one named (none when it is the builtin one). What wake() and
    list_jobs serve."""
    return [
        spec
        for spec in other_transitions(conn)
        if name in (None, spec.name) and table_exists(conn, spec.table)
    ]


def _lookup(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM scheduler_transitions WHERE name = ?", (name,)
    ).fetchone()
    return row


UNKNOWN_HINT = "scheduler-admin transitions list shows the registered ones."


def transition_target(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    """The registry row of the transition ``name`` (meetings included); an unknown name is an
    :class:`InvalidInput`, raised before the caller changes anything."""
    row = _lookup(conn, name) if isinstance(name, str) else None
    if row is None:
        raise InvalidInput(f"no transition named {name}", hint=UNKNOWN_HINT)
    return row


def spec_of(conn: sqlite3.Connection, name: str) -> Spec:
    """The registered transition ``name`` other than meetings (:func:`transition_target` for an
    unknown name)."""
    row = transition_target(conn, name)
    if row["builtin"]:
        raise InvalidInput(f"the transition {name} is builtin: the meetings machinery serves it")
    return _spec(row)


def paused_transitions(conn: sqlite3.Connection) -> list[str]:
    """The transitions paused by name, meetings first, then by name."""
    rows = conn.execute(
        "SELECT name FROM scheduler_transitions WHERE paused = 1 ORDER BY builtin DESC, name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _prefix_sql(column: str) -> str:
    return f"substr({column}, 1, length(:prefix)) = :prefix"


# -- the jobs a transition's rows should have -----------------------------------------------


def jobs_sql(spec: Spec, where: str) -> str:
    """The job of every row of the table matching ``where`` (SQL on alias ``t``): key, time,
    jobname, schedule, command, job_minute; the twin of the view scheduler_meeting_jobs
    (with the rounding of a finer fraction: :func:`job_minute_sql`)."""
    command_head = quote_text(f"complete_transition({quote_text(spec.name)}, ")
    job_minute = job_minute_sql(spec.col(spec.time, "t"))
    return f"""SELECT m.key AS key, m.time AS time,
       {quote_text(spec.prefix)} || CAST(m.key AS TEXT) AS jobname,
       {schedule_sql("m.job_minute")} AS schedule,
       {command_head} || quote(CAST(m.key AS TEXT)) || ')' AS command,
       m.job_minute AS job_minute
  FROM (SELECT {spec.col(spec.key, "t")} AS key, {spec.col(spec.time, "t")} AS time,
               {job_minute} AS job_minute
          FROM {spec.qtable} t
         WHERE {where}) m"""


def _register_sql(spec: Spec, where: str, *, condition: str = "1") -> str:
    # (the WHERE clause is also what lets SQLite parse INSERT ... SELECT ... ON CONFLICT)
    return f"""INSERT INTO cron_job (schedule, command, jobname)
    SELECT j.schedule, j.command, j.jobname
      FROM ({jobs_sql(spec, where)}) j
     WHERE {condition}
    ON CONFLICT (jobname) DO UPDATE
        -- like cron.schedule: a job someone deactivated stays inactive
        SET schedule = excluded.schedule, command = excluded.command
        WHERE cron_job.schedule IS NOT excluded.schedule
           OR cron_job.command IS NOT excluded.command"""


# -- the generated triggers -----------------------------------------------------------------


def write_event_sql(spec: Spec) -> str:
    """The INSERT of the generated after triggers recording the completion event (path write,
    at SQLite's clock, microseconds as text) of the row ``NEW`` when it is pending and its time
    has passed: the condition on which they complete it; the twin of the events the meetings
    triggers record (sql/sqlite/30_triggers.sql)."""
    t_time = spec.col(spec.time, "t")
    return f"""INSERT INTO scheduler_completion_events
           (meeting_id, end_time, completed_at, path, delivery, next_attempt_at, transition,
            key)
    SELECT NULL, strftime('%Y-%m-%dT%H:%M:%f', {t_time}) || '000+00:00', c.now, 'write',
           (SELECT CASE WHEN w.enabled = 1 THEN 'pending' END
              FROM scheduler_webhooks w WHERE w.singleton = 1),
           c.now, {quote_text(spec.name)}, CAST({spec.col(spec.key, "t")} AS TEXT)
      FROM {spec.qtable} t,
           (SELECT strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00' AS now) c
     WHERE {spec.col(spec.key, "t")} = NEW.{spec.col(spec.key)}
       AND {spec.pending(spec.col(spec.state, "t"))}
       AND julianday({t_time}) <= julianday('now')"""


def trigger_sql(spec: Spec) -> dict[str, str]:
    """The five CREATE TRIGGER statements of a transition, by kind (see the module's doc), as the
    schema writes them today: a job only while the transition is active (:func:`active_sql`),
    the job minute rounding up a fraction finer than SQLite's milliseconds
    (:func:`job_minute_sql`), and the completion event (path ``write``) of a row they complete.
    Earlier shapes are frozen in their revisions (:func:`render_frozen_triggers`)."""
    active = active_sql(spec.name)
    table, key, time, state = (
        spec.qtable,
        spec.col(spec.key),
        spec.col(spec.time),
        spec.col(spec.state),
    )
    where_pending = " or ".join(spec.from_states)
    what = f"{spec.table}.{spec.time} (transition {spec.name}, a row in state {where_pending})"
    required = quote_text(f"{what} is required: {TIME_HINT}")
    invalid = quote_text(f"{what} is not a valid time: {TIME_HINT}")
    no_key = quote_text(
        f"{spec.table}.{spec.key} is required for a row in state {where_pending} "
        f"(transition {spec.name}: its job is named {spec.prefix}<{spec.key}>)"
    )
    check = f"""BEGIN
    SELECT RAISE(ABORT, {required})
     WHERE NEW.{time} IS NULL;
    SELECT RAISE(ABORT, {invalid})
     WHERE NEW.{time} IS NOT NULL
       AND {invalid_time_sql("NEW." + time)};
END"""
    complete = f"""UPDATE {table} SET {state} = {quote_text(spec.to_state)}
     WHERE {key} = NEW.{key} AND {spec.pending(state)}
       AND julianday({time}) <= julianday('now')"""
    # its completion event first, on the condition of the completion (the row is then no longer
    # pending: a nested trigger never records it twice)
    complete = f"""-- its completion event (path write) first, on the condition below
    {write_event_sql(spec)};
    {complete}"""
    this_row = (
        f"{spec.col(spec.key, 't')} = NEW.{key} AND {spec.pending(spec.col(spec.state, 't'))}"
    )
    old_job = f"{quote_text(spec.prefix)} || CAST(OLD.{key} AS TEXT)"
    beyond = beyond_horizon_sql(spec.name, "j.time")
    register_new = _register_sql(spec, this_row, condition=f"{active}\n       AND NOT {beyond}")
    moved = (
        f"(NEW.{key} IS NOT OLD.{key} OR NOT COALESCE({spec.pending('OLD.' + state)}, 0)\n"
        f"            OR julianday(OLD.{time}) IS NOT julianday(NEW.{time}))"
    )
    register_moved = _register_sql(
        spec, this_row, condition=f"{moved} AND {active}\n       AND NOT {beyond}"
    )
    return {
        "before_insert": f"""CREATE TRIGGER {quote_ident(spec.trigger("before_insert"))}
BEFORE INSERT ON {table}
WHEN {spec.pending("NEW." + state)}
{check}""",
        "before_update": f"""CREATE TRIGGER {quote_ident(spec.trigger("before_update"))}
BEFORE UPDATE OF {key}, {time}, {state} ON {table}
WHEN {spec.pending("NEW." + state)}
{check}""",
        "after_insert": f"""CREATE TRIGGER {quote_ident(spec.trigger("after_insert"))}
AFTER INSERT ON {table}
WHEN {spec.pending("NEW." + state)}
BEGIN
    SELECT RAISE(ABORT, {no_key}) WHERE NEW.{key} IS NULL;
    -- a pending row whose time has passed gets the to-state at once (no job)
    {complete};
    -- a row still pending gets its job
    {register_new};
END""",
        "after_update": f"""CREATE TRIGGER {quote_ident(spec.trigger("after_update"))}
AFTER UPDATE OF {key}, {time}, {state} ON {table}
BEGIN
    SELECT RAISE(ABORT, {no_key})
     WHERE NEW.{key} IS NULL AND {spec.pending("NEW." + state)};
    {complete};
    -- a row that left the pending states (or whose key changed) loses its job
    DELETE FROM cron_job
     WHERE jobname = {old_job}
       AND (NEW.{key} IS NOT OLD.{key}
            OR NOT EXISTS (SELECT 1 FROM {table} t WHERE {this_row}));
    -- a row moved beyond the job horizon loses its job (revision 0011)
    DELETE FROM cron_job
     WHERE jobname = {quote_text(spec.prefix)} || CAST(NEW.{key} AS TEXT)
       AND {beyond_horizon_sql(spec.name, "NEW." + time)};
    -- a row that became pending, or whose time moved, gets its job (re)registered
    {register_moved};
END""",
        "after_delete": f"""CREATE TRIGGER {quote_ident(spec.trigger("after_delete"))}
AFTER DELETE ON {table}
BEGIN
    DELETE FROM cron_job WHERE jobname = {old_job};
END""",
    }


# -- the generated triggers as a revision froze them ---------------------------------------
#
# A revision that changes the shape of the generated triggers freezes it in
# sql/revisions/<revision>/sqlite/generated_triggers.sql: the five CREATE TRIGGER statements of a
# transition whose table, columns, name, prefix and states are the placeholders below. Its
# migration (and the downgrade of the next one) renders them for each registered transition, so
# that a released revision never depends on how today's code writes them.
PLACEHOLDER_SPEC = Spec(
    name="n@me",
    table="t@ble",
    key="k@y",
    time="t@me",
    state="st@te",
    from_states=("fr@m",),
    to_state="t@state",
    prefix="pref@x-",
)
_IDENTIFIERS = ("table", "key", "time", "state")
# every placeholder, quoted forms first: one pass, so a value is never substituted again
_PLACEHOLDERS = re.compile(
    "|".join(
        re.escape(text)
        for text in sorted(
            {
                quote_text(PLACEHOLDER_SPEC.from_states[0]),
                quote_text(PLACEHOLDER_SPEC.to_state),
                PLACEHOLDER_SPEC.name,
                PLACEHOLDER_SPEC.prefix,
                PLACEHOLDER_SPEC.from_states[0],
                *(quote_ident(getattr(PLACEHOLDER_SPEC, f)) for f in _IDENTIFIERS),
                *(getattr(PLACEHOLDER_SPEC, f) for f in _IDENTIFIERS),
            },
            key=len,
            reverse=True,
        )
    )
)


def render_frozen_triggers(template: str, spec: Spec) -> dict[str, str]:
    """The CREATE TRIGGER statements of a frozen template (see PLACEHOLDER_SPEC) for ``spec``, by
    kind. Quoted placeholders become quoted values; the rest stand inside the string literals of
    the triggers' messages, where a value's quotes are doubled."""
    from scheduler_admin.sql_units import statements

    p = PLACEHOLDER_SPEC
    values = {
        quote_text(p.from_states[0]): ", ".join(map(quote_text, spec.from_states)),
        quote_text(p.to_state): quote_text(spec.to_state),
        p.name: spec.name,  # [a-z0-9_]
        p.prefix: spec.prefix,  # [a-z0-9-]
        p.from_states[0]: " or ".join(spec.from_states).replace("'", "''"),
    }
    for field in _IDENTIFIERS:
        values[quote_ident(getattr(p, field))] = quote_ident(getattr(spec, field))
        values[getattr(p, field)] = getattr(spec, field).replace("'", "''")
    out: dict[str, str] = {}
    for statement in statements(template):
        code = "\n".join(
            line for line in statement.splitlines() if not line.startswith("-- ")
        ).strip()
        if not code:
            continue
        code = _PLACEHOLDERS.sub(lambda m: values[m.group(0)], code.removesuffix(";"))
        kind = next(k for k in TRIGGER_KINDS if f'"{spec.trigger(k)}"' in code.split("\n")[0])
        out[kind] = code
    return out


def transition_triggers(conn: sqlite3.Connection, spec: Spec) -> set[str]:
    names = [spec.trigger(kind) for kind in TRIGGER_KINDS]
    rows = conn.execute(
        f"SELECT name FROM sqlite_master WHERE type = 'trigger' "
        f"AND name IN ({', '.join('?' for _ in names)})",
        names,
    ).fetchall()
    return {str(row[0]) for row in rows}


def create_transition_triggers(conn: sqlite3.Connection, spec: Spec) -> int:
    """Create the transition's triggers that are missing (all at add; after an application
    rebuilt its table, the repair re-creates them); how many were created."""
    present = transition_triggers(conn, spec)
    created = 0
    for kind, sql in trigger_sql(spec).items():
        if spec.trigger(kind) not in present:
            conn.execute(sql)
            created += 1
    return created


def drop_transition_triggers(conn: sqlite3.Connection, spec: Spec) -> None:
    for kind in TRIGGER_KINDS:
        conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(spec.trigger(kind))}")


def drop_generated_triggers(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Drop the triggers of every registered transition; the kinds each had, by transition
    name, for :func:`create_generated_triggers` (the migration of 0006 re-creates them in the
    shape of the revision it goes to, no more and no fewer)."""
    present: dict[str, list[str]] = {}
    for spec in other_transitions(conn):
        found = transition_triggers(conn, spec)
        present[spec.name] = [kind for kind in TRIGGER_KINDS if spec.trigger(kind) in found]
        drop_transition_triggers(conn, spec)
    return present


def create_generated_triggers(
    conn: sqlite3.Connection, present: dict[str, list[str]], template: str
) -> int:
    """Create the triggers of ``present`` (:func:`drop_generated_triggers`) again from the
    registry, in the shape a revision froze (``template``: its generated_triggers.sql, see
    :func:`render_frozen_triggers`); how many."""
    created = 0
    for spec in other_transitions(conn):
        statements = render_frozen_triggers(template, spec)
        for kind in present.get(spec.name, []):
            conn.execute(statements[kind])
            created += 1
    return created


def drop_all_triggers(conn: sqlite3.Connection) -> None:
    """Drop the triggers of every registered transition (teardown, downgrade of 0005): they are
    generated, so no SQL file can name them."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scheduler_transitions'"
    ).fetchone()
    if exists is None:
        return
    for (name,) in conn.execute(
        "SELECT name FROM scheduler_transitions WHERE builtin = 0"
    ).fetchall():
        for kind in TRIGGER_KINDS:
            conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(f'scheduler_{name}_{kind}')}")


# -- add: validation ------------------------------------------------------------------------


def _affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (https://sqlite.org/datatype3.html 3.1)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _resolve_table(conn: sqlite3.Connection, table: str) -> str:
    """The table's name as the schema spells it (``main.`` or ``public.`` before it is
    accepted, so that the PostgreSQL spelling works); clear errors otherwise."""
    candidates = [table]
    schema, dot, rest = table.partition(".")
    if dot and schema.lower() in ("main", "public"):
        candidates.append(rest)
    for candidate in candidates:
        row = conn.execute(
            "SELECT name, type, sql FROM sqlite_master WHERE name = ? COLLATE NOCASE "
            "AND type IN ('table', 'view')",
            (candidate,),
        ).fetchone()
        if row is None:
            continue
        name = str(row["name"])
        if row["type"] != "table" or str(row["sql"] or "").upper().startswith("CREATE VIRTUAL"):
            raise InvalidInput(
                f"{name} is a {'view' if row['type'] == 'view' else 'virtual table'}, not a "
                "table: SQLite has no triggers of ours for it",
                hint="Register the ordinary table that holds the rows.",
            )
        if _RESERVED_TABLES.match(name):
            raise InvalidInput(
                f"{name} is a table of the scheduler (or of SQLite), not an application table",
                hint="Register a table of the application.",
            )
        return name
    raise InvalidInput(
        f"table {table} does not exist in this database",
        hint="Create it first (or check its name: `sqlite3 <database> .tables`).",
    )


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, sqlite3.Row]:
    """The table's columns by lower-cased name (PRAGMA table_xinfo: hidden > 1 = generated)."""
    rows = conn.execute("SELECT * FROM pragma_table_xinfo(?)", (table,)).fetchall()
    return {str(row["name"]).lower(): row for row in rows}


def _column(columns: dict[str, sqlite3.Row], table: str, column: str, role: str) -> sqlite3.Row:
    row = columns.get(column.lower())
    if row is None:
        names = ", ".join(str(r["name"]) for r in columns.values())
        raise InvalidInput(
            f'column "{column}" ({role}) does not exist in {table}',
            hint=f"{table} has the columns {names}; give one of them, or add the column "
            f"(ALTER TABLE {quote_ident(table)} ADD COLUMN ...).",
        )
    return row


def _key_is_unique(conn: sqlite3.Connection, table: str, key: str) -> bool:
    """Whether ``key`` alone is the table's primary key (the INTEGER PRIMARY KEY included) or
    has a unique index that is not partial."""
    rows = conn.execute("SELECT name, pk FROM pragma_table_info(?)", (table,)).fetchall()
    pk = [str(row["name"]) for row in rows if row["pk"]]
    if pk == [key]:
        return True
    for index in conn.execute(
        'SELECT name, "unique", partial FROM pragma_index_list(?)', (table,)
    ).fetchall():
        if not index["unique"] or index["partial"]:
            continue
        cols = [
            row["name"]
            for row in conn.execute("SELECT name FROM pragma_index_info(?)", (index["name"],))
        ]
        if cols == [key]:
            return True
    return False


def _check_prefix(conn: sqlite3.Connection, prefix: str) -> None:
    if not PREFIX_RE.match(prefix):
        raise InvalidInput(
            f"job prefix {prefix!r} is not valid: lower-case letters, digits and '-', starting "
            "with a letter and ending with '-' (e.g. memberships-status-)",
            hint="Give one with --prefix.",
        )
    if prefix.startswith(JOB_PREFIX):
        raise InvalidInput(
            f"job prefix {prefix!r} starts with {JOB_PREFIX!r}, the prefix of the meetings' jobs",
            hint="Give another one with --prefix.",
        )
    for name, other in conn.execute("SELECT name, job_prefix FROM scheduler_transitions"):
        if prefix.startswith(other) or other.startswith(prefix):
            raise InvalidInput(
                f"job prefix {prefix!r} overlaps the prefix {other!r} of the transition {name}: "
                "a job name would not say which transition it belongs to",
                hint="Give another one with --prefix.",
            )


def _validate(
    conn: sqlite3.Connection,
    name: str,
    *,
    table: str,
    key_column: str,
    time_column: str,
    state_column: str,
    from_states: list[str],
    to_state: str,
    job_prefix: str | None,
) -> Spec:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(
            f"transition name {name!r} is not valid: 1 to 40 lower-case letters, digits and '_', "
            "starting with a letter (e.g. memberships)"
        )
    if name == BUILTIN:
        raise InvalidInput(
            "the transition meetings is builtin: the migrations own it",
            hint="Choose another name.",
        )
    if _lookup(conn, name) is not None:
        raise InvalidInput(
            f"a transition named {name} already exists",
            hint=f"Choose another name, or `scheduler-admin transitions remove {name}` first.",
        )
    real_table = _resolve_table(conn, table)
    columns = _columns(conn, real_table)
    key_row = _column(columns, real_table, key_column, "the key")
    time_row = _column(columns, real_table, time_column, "the time")
    state_row = _column(columns, real_table, state_column, "the state")
    key, time, state = (str(r["name"]) for r in (key_row, time_row, state_row))
    if len({key.lower(), time.lower(), state.lower()}) < 3:
        raise InvalidInput(
            f"the key, time and state columns must be three different columns, got {key}, "
            f"{time}, {state}"
        )
    if _affinity(str(key_row["type"] or "")) not in ("INTEGER", "TEXT"):
        raise InvalidInput(
            f'{real_table}.{key} is declared "{key_row["type"] or ""}": the key column must be '
            "INTEGER or TEXT",
            hint="Use the table's INTEGER PRIMARY KEY or a TEXT column with a unique index.",
        )
    if not _key_is_unique(conn, real_table, key):
        raise InvalidInput(
            f"{real_table}.{key} is neither the primary key nor a column with a unique index "
            "of its own: a job per row needs a unique key",
            hint=f"CREATE UNIQUE INDEX {quote_ident(real_table + '_' + key + '_key')} ON "
            f"{quote_ident(real_table)} ({quote_ident(key)}), or give the primary key.",
        )
    if _affinity(str(state_row["type"] or "")) != "TEXT":
        raise InvalidInput(
            f'{real_table}.{state} is declared "{state_row["type"] or ""}": the state column '
            "must be TEXT",
            hint="Give a column declared TEXT (or VARCHAR).",
        )
    if int(state_row["hidden"]) > 1:
        raise InvalidInput(
            f"{real_table}.{state} is a generated column: the scheduler cannot set it",
            hint="Give a column the scheduler may update.",
        )
    states = list(dict.fromkeys(from_states))
    if not states or any(not isinstance(s, str) or not s for s in states):
        raise InvalidInput(
            "from_states must name at least one state, none of them empty",
            hint="Give --from STATE (once per state).",
        )
    if not isinstance(to_state, str) or not to_state:
        raise InvalidInput("to_state must not be empty", hint="Give --to STATE.")
    if to_state in states:
        raise InvalidInput(
            f"to_state {to_state!r} is among the from states: the row would stay pending",
            hint="Give a state the rows move to that is not one they move from.",
        )
    same = conn.execute(
        "SELECT name FROM scheduler_transitions WHERE table_name = ? COLLATE NOCASE "
        "AND time_column = ? COLLATE NOCASE",
        (real_table, time),
    ).fetchone()
    if same is not None:
        raise InvalidInput(
            f"{real_table}.{time} is already the time of the transition {same[0]}",
            hint=f"Remove it first (`scheduler-admin transitions remove {same[0]}`), or use "
            "another time column.",
        )
    prefix = job_prefix if job_prefix is not None else name.replace("_", "-") + "-status-"
    _check_prefix(conn, prefix)
    spec = Spec(name, real_table, key, time, state, tuple(states), to_state, prefix)
    taken = transition_triggers(conn, spec)
    if taken:
        raise InvalidInput(
            f"the trigger {sorted(taken)[0]} exists already: the transition's triggers would "
            "replace it",
            hint="Choose another transition name (or drop that trigger).",
        )
    return spec


def _bad_rows(conn: sqlite3.Connection, spec: Spec, limit: int = 5) -> list[str]:
    """Keys of pending rows with a null key or a missing or unparsable time (as text)."""
    time = spec.col(spec.time)
    rows = conn.execute(
        f"""SELECT CAST({spec.col(spec.key)} AS TEXT), {time}
              FROM {spec.qtable}
             WHERE {spec.pending(spec.col(spec.state))}
               AND ({spec.col(spec.key)} IS NULL OR {time} IS NULL
                    OR {invalid_time_sql(time)})
             LIMIT ?""",
        (limit,),
    ).fetchall()
    return [f"{row[0] if row[0] is not None else 'null'} ({row[1]!r})" for row in rows]


# -- add, remove, list ----------------------------------------------------------------------


def add_transition(
    conn: sqlite3.Connection,
    name: str,
    *,
    table: str,
    key_column: str,
    time_column: str,
    state_column: str,
    from_states: list[str],
    to_state: str,
    job_prefix: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """Twin of scheduler.add_transition(): validate (each failure an :class:`InvalidInput`
    naming the fix, raised before anything is written), record the transition, install its
    triggers, then complete the pending rows already due at ``now`` and register a job per
    pending row. Paused: the triggers are installed, nothing is completed or registered
    (resume's recovery does it)."""
    spec = _validate(
        conn,
        name,
        table=table,
        key_column=key_column,
        time_column=time_column,
        state_column=state_column,
        from_states=from_states,
        to_state=to_state,
        job_prefix=job_prefix,
    )
    bad = _bad_rows(conn, spec)
    if bad:
        raise InvalidInput(
            f"{spec.table} has rows in state {' or '.join(spec.from_states)} without a key or "
            f"with a missing or unparsable {spec.time} (key (value)): {', '.join(bad)}",
            hint=f"Fix those rows first: {spec.time} must be ISO-8601 text, {TIME_HINT}.",
        )
    conn.execute(
        """INSERT INTO scheduler_transitions
               (name, table_name, key_column, time_column, state_column, from_states, to_state,
                job_prefix, builtin, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)""",
        (
            spec.name,
            spec.table,
            spec.key,
            spec.time,
            spec.state,
            json.dumps(list(spec.from_states)),
            spec.to_state,
            spec.prefix,
            to_db_time(now),
        ),
    )
    create_transition_triggers(conn, spec)
    completed = registered_jobs = 0
    if transition_active(conn, spec.name):
        completed = complete_due_transition(conn, spec, now, path="recover")
        registered_jobs = conn.execute(
            _register_sql(spec, spec.pending(spec.col(spec.state, "t"))),
            {},
        ).rowcount
        _remove_orphans(conn, spec)
    log.info(
        "transition %s on %s: %s registered, %s completed",
        spec.name,
        spec.table,
        plural(registered_jobs, "job"),
        plural(completed, "row"),
    )
    return {
        "name": spec.name,
        "table": spec.table,
        "job_prefix": spec.prefix,
        "jobs_registered": registered_jobs,
        "completed": completed,
    }


def _spec_or_error(conn: sqlite3.Connection, name: str) -> Spec:
    row = _lookup(conn, name)
    if row is None:
        raise InvalidInput(f"no transition named {name}", hint=UNKNOWN_HINT)
    if row["builtin"]:
        raise InvalidInput(
            f"the transition {name} is builtin and cannot be removed: the migrations own it",
            hint="`scheduler-admin migrate base` removes everything of the scheduler.",
        )
    return _spec(row)


def remove_transition(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    """Twin of scheduler.remove_transition(): drop the transition's triggers and jobs and its
    registry row; the table's rows are never touched. ``meetings`` is refused."""
    spec = _spec_or_error(conn, name)
    drop_transition_triggers(conn, spec)
    removed = conn.execute(
        f"DELETE FROM cron_job WHERE {_prefix_sql('jobname')}", {"prefix": spec.prefix}
    ).rowcount
    conn.execute("DELETE FROM scheduler_transitions WHERE name = ?", (spec.name,))
    safety.forget_transition(conn, spec.name)
    log.info("removed transition %s (%s)", spec.name, plural(removed, "job"))
    return {"name": spec.name, "jobs_removed": removed}


def table_exists(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def transitions(conn: sqlite3.Connection) -> list[Transition]:
    """Twin of scheduler.transitions(): meetings first (its states the words of
    scheduler_statuses), then by name, with the pending rows and the jobs of each (a
    transition whose table was dropped counts 0 pending rows)."""
    words = statuses(conn)
    result: list[Transition] = []
    for row in conn.execute(
        "SELECT * FROM scheduler_transitions ORDER BY builtin DESC, name"
    ).fetchall():
        builtin = bool(row["builtin"])
        if builtin:
            from_states, to_state = [words.pending], words.done
            pending = int(
                conn.execute(
                    "SELECT count(*) FROM meetings WHERE status = ?", (words.pending,)
                ).fetchone()[0]
            )
            jobs = int(
                conn.execute(
                    f"SELECT count(*) FROM cron_job WHERE {_prefix_sql('jobname')} "
                    "AND jobname <> :reconcile",
                    {"prefix": JOB_PREFIX, "reconcile": RECONCILE_JOB},
                ).fetchone()[0]
            )
        else:
            spec = _spec(row)
            from_states, to_state = list(spec.from_states), spec.to_state
            pending = 0
            if table_exists(conn, spec.table):
                pending = int(
                    conn.execute(
                        f"SELECT count(*) FROM {spec.qtable} "
                        f"WHERE {spec.pending(spec.col(spec.state))}"
                    ).fetchone()[0]
                )
            jobs = int(
                conn.execute(
                    f"SELECT count(*) FROM cron_job WHERE {_prefix_sql('jobname')}",
                    {"prefix": spec.prefix},
                ).fetchone()[0]
            )
        result.append(
            Transition(
                name=str(row["name"]),
                table_name=str(row["table_name"]),
                key_column=str(row["key_column"]),
                time_column=str(row["time_column"]),
                state_column=str(row["state_column"]),
                from_states=from_states,
                to_state=to_state,
                job_prefix=str(row["job_prefix"]),
                builtin=builtin,
                pending_rows=pending,
                jobs=jobs,
                paused=bool(row["paused"]),
            )
        )
    return result


# -- completion -----------------------------------------------------------------------------


def _qualified(spec: Spec, column: str) -> str:
    """A column of the transition's table qualified by the table's name (SQL that a subquery
    on scheduler_failing_rows reads unambiguously)."""
    return f"{spec.qtable}.{spec.col(column)}"


def _pending_sql(spec: Spec) -> str:
    return spec.pending(_qualified(spec, spec.state))


def complete_due_transition(
    conn: sqlite3.Connection, spec: Spec, now: datetime, *, path: str
) -> int:
    """Give ``to_state`` to every pending row of the transition whose time is at or before
    ``now``; how many. Each gets its completion event of ``path`` (job, waker, reconcile,
    recover) at ``now``, recorded first (afterwards the rows no longer match). The table's
    update trigger removes their jobs. One set UPDATE; a row whose completion is rejected (a
    constraint, a trigger of the application's or of another transition on the same table)
    never holds up the others: it is recorded as failing and left out until its retry time
    (:func:`scheduler_admin.sqlite.safety.complete_rows`)."""
    pending = _pending_sql(spec)
    where = f"{pending} AND julianday({_qualified(spec, spec.time)}) <= julianday(:now)"
    params = {"to_state": spec.to_state, "now": to_db_time(now)}

    def complete(condition: str, values: dict[str, str]) -> int:
        record_row_completions(
            conn,
            now,
            path=path,
            transition=spec.name,
            table=spec.qtable,
            key=spec.col(spec.key),
            time=spec.col(spec.time),
            where=condition,
            params=values,
        )
        return conn.execute(
            f"UPDATE {spec.qtable} SET {spec.col(spec.state)} = :to_state WHERE {condition}",
            values,
        ).rowcount

    return safety.complete_rows(
        conn,
        now,
        transition=spec.name,
        table=spec.qtable,
        key=_qualified(spec, spec.key),
        pending=pending,
        where=where,
        params=params,
        complete=complete,
    )


def forget_failing(conn: sqlite3.Connection, spec: Spec) -> int:
    """Forget the failing entries of the transition's rows that are gone or no longer pending
    (every entry when its table is gone)."""
    if not table_exists(conn, spec.table):
        return safety.forget_transition(conn, spec.name)
    return safety.clear_failing_rows(
        conn,
        spec.name,
        table=spec.qtable,
        key=_qualified(spec, spec.key),
        pending=_pending_sql(spec),
        params={},
    )


def transition_next_time(
    conn: sqlite3.Connection, spec: Spec, now: datetime | None = None
) -> datetime | None:
    """Twin of scheduler.transition_next_time(): the earliest time of a pending row of the
    transition (None when no row is pending), what the waker sleeps until. With ``now``: a row
    waiting for its retry after a failed completion counts at its retry time (revision
    0009)."""
    time = spec.col(spec.time)
    waiting = "" if now is None else f" AND {safety.not_waiting_sql(_qualified(spec, spec.key))}"
    row = conn.execute(
        f"""SELECT {time} FROM {spec.qtable}
             WHERE {_pending_sql(spec)} AND julianday({time}) IS NOT NULL{waiting}
             ORDER BY julianday({time}) LIMIT 1""",
        {"fr_transition": spec.name, "fr_now": None if now is None else to_db_time(now)},
    ).fetchone()
    found = None if row is None else from_db_time(row[0])
    if now is None:
        return found
    retry = safety.next_retry(
        conn,
        now,
        spec.name,
        table=spec.qtable,
        key=_qualified(spec, spec.key),
        time=_qualified(spec, spec.time),
        pending=_pending_sql(spec),
        params={},
    )
    known = [time for time in (found, retry) if time is not None]
    return min(known) if known else None


def complete_transition(conn: sqlite3.Connection, name: str, key: str, now: datetime) -> Completion:
    """Twin of scheduler.complete_transition(): completes every pending row of the transition
    already due at ``now``, leaves a row that is not due alone, and removes the job of a key
    whose row is gone or no longer pending. Paused (the scheduler, or the transition by name):
    changes nothing. Unknown transition (or
    its table gone): :class:`InvalidInput`, a failed run."""
    row = _lookup(conn, name)
    if row is None or row["builtin"]:
        raise InvalidInput(f"no transition named {name}")
    spec = _spec(row)
    if not table_exists(conn, spec.table):
        raise InvalidInput(
            f"the table {spec.table} of the transition {name} does not exist",
            hint=f"`scheduler-admin transitions remove {name}` removes its jobs.",
        )

    def state() -> str | None:
        found = conn.execute(
            f"SELECT {spec.col(spec.state)} FROM {spec.qtable} WHERE {spec.col(spec.key)} = ?",
            (key,),
        ).fetchone()
        return None if found is None else str(found[0])

    before = state()
    if not transition_active(conn, name):
        return Completion(0, False, before, False, before in spec.from_states)
    completed = complete_due_transition(conn, spec, now, path="job")
    after = state()
    still_pending = after in spec.from_states
    removed = (
        not still_pending
        and conn.execute("DELETE FROM cron_job WHERE jobname = ?", (spec.prefix + key,)).rowcount
        > 0
    )
    this_one = before in spec.from_states and after == spec.to_state
    found = safety.entry(conn, spec.name, key) if still_pending else None
    return Completion(
        completed,
        this_one,
        after,
        removed,
        still_pending,
        None if found is None else safety.describe(found),
    )


def isolated(conn: sqlite3.Connection, name: str, work: Callable[[], T]) -> T | None:
    """``work()`` for the transition ``name`` in a savepoint: an error of the database (a table
    the application changed behind the registry's back) is logged and rolled back, and the
    caller goes on with the other transitions (None)."""
    conn.execute("SAVEPOINT scheduler_transition")
    try:
        result = work()
    except sqlite3.Error as exc:
        if not conn.in_transaction:
            raise
        conn.execute("ROLLBACK TO scheduler_transition")
        conn.execute("RELEASE scheduler_transition")
        log.warning("transition %s could not be completed: %s", name, exc)
        return None
    conn.execute("RELEASE scheduler_transition")
    return result


def wake(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> Wake:
    """Twin of scheduler.wake() in sql/postgres/20_functions.sql: completes what is due at
    ``now`` (the backend's clock) for every active transition (None) or the one named: the
    pending meetings (events of path ``waker``) and the due rows of the registered transitions,
    all counted in ``completed``; then the earliest pending time among them (a row waiting for
    its retry after a failed completion counts at its retry time). ``paused``: none of them is
    active (nothing completed, no next time). An unknown name is an
    :class:`~scheduler_admin.exceptions.InvalidInput`, before anything changes. Each transition
    completes in isolation (:func:`isolated`): an error of one never stops another's
    completion.

    Here and not in :mod:`scheduler_admin.sqlite.functions` beside ``next_end_time()``: it serves
    the registered transitions too, and this module builds on that one."""
    if transition is not None:
        transition_target(conn, transition)
    completed = 0
    acting = False
    times: list[datetime] = []
    if transition in (None, BUILTIN) and transition_active(conn):
        acting = True

        def meetings() -> tuple[int, datetime | None]:
            done = complete_due_meetings(conn, now, path="waker")
            return done, from_db_time(next_end_time(conn, now))

        result = isolated(conn, BUILTIN, meetings)
        if result is not None:
            completed += result[0]
            if result[1] is not None:
                times.append(result[1])
    for spec in named_transitions(conn, transition):
        if not transition_active(conn, spec.name):
            continue
        acting = True

        def rows(spec: Spec = spec) -> tuple[int, datetime | None]:
            done = complete_due_transition(conn, spec, now, path="waker")
            return done, transition_next_time(conn, spec, now)

        found = isolated(conn, spec.name, rows)
        if found is not None:
            completed += found[0]
            if found[1] is not None:
                times.append(found[1])
    stamp = iso(now)
    assert stamp is not None
    return Wake(
        completed=completed,
        next_end_time=iso(min(times)) if times else None,
        now=stamp,
        paused=not acting,
    )


# -- repair (recover, reconcile) ------------------------------------------------------------


class TransitionRepair(TypedDict):
    """What recover/reconcile did for one registered (non-builtin) transition: the value of
    its name in the reports' ``transitions`` key (a key the reports have only when such a
    transition exists, hence not declared in RecoverReport)."""

    total: int  # pending rows read
    jobs_scheduled: int  # jobs registered because they were missing or wrong
    jobs_already_exist: int
    overdue_completed: int  # pending rows whose time had passed, given the to-state
    orphans_removed: int  # jobs with the transition's prefix and no pending row
    # pending rows beyond the job horizon (revision 0011; only with a horizon): no job yet
    beyond_horizon: NotRequired[int]


def _orphans(conn: sqlite3.Connection, spec: Spec) -> list[int]:
    """Jobs with the transition's prefix that no pending row owns (wrong jobs are re-registered
    under their name, so they are not orphans). The key in the job name finds the row through
    the key's index; the name must then be the row's job name exactly."""
    key = spec.col(spec.key, "t")
    rows = conn.execute(
        f"""SELECT c.jobid FROM cron_job c
             WHERE {_prefix_sql("c.jobname")}
               AND NOT EXISTS (
                   SELECT 1 FROM {spec.qtable} t
                    WHERE {key} = substr(c.jobname, length(:prefix) + 1)
                      AND :prefix || CAST({key} AS TEXT) = c.jobname
                      AND {spec.pending(spec.col(spec.state, "t"))})""",
        {"prefix": spec.prefix},
    ).fetchall()
    return [int(row[0]) for row in rows]


def orphan_jobs(conn: sqlite3.Connection, spec: Spec) -> list[int]:
    """The ids of the transition's orphan jobs (metrics' orphan_jobs of a transition)."""
    return _orphans(conn, spec)


def _remove_orphans(conn: sqlite3.Connection, spec: Spec) -> int:
    orphans = _orphans(conn, spec)
    for jobid in orphans:
        conn.execute("DELETE FROM cron_job WHERE jobid = ?", (jobid,))
    return len(orphans)


def repair_transition(
    conn: sqlite3.Connection, spec: Spec, now: datetime, *, dry_run: bool, path: str = "recover"
) -> tuple[TransitionRepair, list[dict[str, str]]]:
    """The repair of one transition, after the meetings': complete the due rows, register the
    missing or wrong jobs, remove the orphan jobs with its prefix; re-create its triggers if the
    application rebuilt the table. Returns the counts and the errors (rows whose time cannot be
    read: left alone, as the meetings' repair does). ``path``: what the events of the rows
    completed say did it (recover, or reconcile for the reconcile job)."""
    report = TransitionRepair(
        total=0,
        jobs_scheduled=0,
        jobs_already_exist=0,
        overdue_completed=0,
        orphans_removed=0,
    )
    if not table_exists(conn, spec.table):
        if not dry_run:
            safety.forget_transition(conn, spec.name)
        return report, [
            {
                "meeting_id": "",
                "transition": spec.name,
                "error": f"transition {spec.name}: its table {spec.table} does not exist "
                f"(remove it: scheduler-admin transitions remove {spec.name})",
            }
        ]
    time = "j.time"
    rows = conn.execute(
        f"""SELECT CAST(j.key AS TEXT) AS key, j.time AS time,
                   j.key IS NULL OR {time} IS NULL OR {invalid_time_sql(time)} AS bad,
                   julianday({time}) <= julianday(:now) AS due,
                   c.jobid AS jobid,
                   (c.schedule IS j.schedule AND c.command IS j.command) AS ok
              FROM ({jobs_sql(spec, spec.pending(spec.col(spec.state, "t")))}) j
              LEFT JOIN cron_job c ON c.jobname = j.jobname""",
        {"now": to_db_time(now)},
    ).fetchall()
    errors: list[dict[str, str]] = []
    due = to_schedule = 0
    # the job horizon (revision 0011): a row beyond it has no job yet, and a job of one goes
    span = horizon_of(conn, spec.name)
    limit = None if span is None else now + span
    beyond_jobs: list[int] = []
    if limit is not None:
        report["beyond_horizon"] = 0
    for row in rows:
        report["total"] += 1
        when = from_db_time(row["time"])
        if row["bad"]:
            errors.append(
                {
                    "meeting_id": "",
                    "transition": spec.name,
                    "key": "" if row["key"] is None else str(row["key"]),
                    "error": f"transition {spec.name}: {spec.table}.{spec.time} of the row "
                    f"{spec.key} = {row['key']} is {row['time']!r}, not an ISO-8601 time "
                    "(expected e.g. 2026-12-01T15:30:00+00:00)",
                }
            )
        elif row["due"]:
            due += 1
        elif limit is not None and when is not None and when > limit:
            report["beyond_horizon"] = report.get("beyond_horizon", 0) + 1
            if row["jobid"] is not None:
                beyond_jobs.append(int(row["jobid"]))
        elif row["jobid"] is not None and row["ok"]:
            report["jobs_already_exist"] += 1
        else:
            to_schedule += 1
    orphans = _orphans(conn, spec) + beyond_jobs
    if dry_run:
        report["jobs_scheduled"] = to_schedule
        report["overdue_completed"] = due
        report["orphans_removed"] = len(orphans)
        return report, errors
    created = create_transition_triggers(conn, spec)
    if created:
        log.warning("transition %s: re-created %s", spec.name, plural(created, "trigger"))
    report["overdue_completed"] = complete_due_transition(conn, spec, now, path=path)
    # the entries of rows gone, or set to another state by the application
    forget_failing(conn, spec)
    valid = f"NOT {invalid_time_sql(spec.col(spec.time, 't'))}"
    report["jobs_scheduled"] = conn.execute(
        _register_sql(
            spec,
            f"{spec.pending(spec.col(spec.state, 't'))} AND {spec.col(spec.key, 't')} IS NOT NULL "
            f"AND {spec.col(spec.time, 't')} IS NOT NULL AND {valid}",
            condition="1" if limit is None else "NOT julianday(j.time) > julianday(:cutoff)",
        ),
        {} if limit is None else {"cutoff": to_db_time(limit)},
    ).rowcount
    for jobid in orphans:
        report["orphans_removed"] += conn.execute(
            "DELETE FROM cron_job WHERE jobid = ?", (jobid,)
        ).rowcount
    # the jobs of the rows just completed, had their triggers been missing
    _remove_orphans(conn, spec)
    return report, errors


def repair_transitions(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    dry_run: bool,
    only: str | None = None,
    path: str = "recover",
) -> tuple[dict[str, TransitionRepair], list[dict[str, str]]]:
    """:func:`repair_transition` for every non-builtin transition not paused by name (or only
    the one named ``only``), each in its own savepoint (one broken transition does not stop the
    others): the ``transitions`` key of the reports (empty: no such transition) and the
    errors."""
    reports: dict[str, TransitionRepair] = {}
    errors: list[dict[str, str]] = []
    for spec in other_transitions(conn):
        if spec.paused or (only is not None and spec.name != only):
            continue
        conn.execute("SAVEPOINT scheduler_repair_transition")
        try:
            reports[spec.name], found = repair_transition(
                conn, spec, now, dry_run=dry_run, path=path
            )
            errors.extend(found)
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK TO scheduler_repair_transition")
            reports[spec.name] = TransitionRepair(
                total=0,
                jobs_scheduled=0,
                jobs_already_exist=0,
                overdue_completed=0,
                orphans_removed=0,
            )
            errors.append(
                {
                    "meeting_id": "",
                    "transition": spec.name,
                    "error": f"transition {spec.name}: {exc}",
                }
            )
        conn.execute("RELEASE scheduler_repair_transition")
    return reports, errors


def transition_report(
    conn: sqlite3.Connection, name: str, now: datetime, *, dry_run: bool, path: str = "recover"
) -> TransitionReport:
    """Twin of scheduler.transition_report(): recover (resume, reconcile) of the one transition
    ``name`` (not meetings), whatever its paused flag (the callers refuse a paused one, but for
    a dry run)."""
    spec = spec_of(conn, name)
    conn.execute("SAVEPOINT scheduler_repair_transition")
    try:
        repaired, errors = repair_transition(conn, spec, now, dry_run=dry_run, path=path)
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK TO scheduler_repair_transition")
        repaired = TransitionRepair(
            total=0,
            jobs_scheduled=0,
            jobs_already_exist=0,
            overdue_completed=0,
            orphans_removed=0,
        )
        errors = [{"meeting_id": "", "transition": spec.name, "error": f"transition {name}: {exc}"}]
    conn.execute("RELEASE scheduler_repair_transition")
    return TransitionReport(
        transition=spec.name,
        **repaired,
        errors=errors,
        success=not errors,
        dry_run=dry_run,
    )


# -- doctor ---------------------------------------------------------------------------------

OVERDUE_AFTER = timedelta(minutes=2)  # a pending row due longer ago than this is overdue


class TransitionHealth(TypedDict):
    """What :func:`transition_health` answers: the keys of scheduler.transition_health(), and
    two SQLite adds for doctor's details: which triggers are missing, and how many pending rows
    have a time that cannot be read (the repair leaves them alone)."""

    transition: str
    table: str
    paused: bool
    triggers: int  # of TRIGGER_KINDS, present
    pending_rows: int
    missing_jobs: int  # pending rows not yet due without their job (missing or wrong)
    orphan_jobs: int  # jobs with the prefix and no pending row
    overdue_rows: int  # pending rows due over OVERDUE_AFTER before now
    missing_triggers: list[str]
    unreadable_rows: int


def transition_health(conn: sqlite3.Connection, name: str, now: datetime) -> TransitionHealth:
    """Twin of scheduler.transition_health() in sql/postgres/45_transitions.sql: doctor's facts
    about the registered transition ``name`` but meetings (meetings, or an unknown name: an
    :class:`InvalidInput`): its triggers present, its pending rows, those without their job and
    the orphan jobs of its prefix (a dry run of :func:`repair_transition`: nothing changes),
    its rows overdue at ``now`` by over two minutes, whether it is paused by name. Its table
    must exist (:class:`InvalidInput` otherwise, as the cast to regclass fails on
    PostgreSQL)."""
    row = transition_target(conn, name)
    if row["builtin"]:
        raise InvalidInput(f"{name} is checked by health()")
    spec = _spec(row)
    if not table_exists(conn, spec.table):
        raise InvalidInput(
            f"transition {name}: its table {spec.table} does not exist",
            hint=f"Remove it (`scheduler-admin transitions remove {name}`) or restore the table.",
        )
    present = transition_triggers(conn, spec)
    missing = [spec.trigger(kind) for kind in TRIGGER_KINDS if spec.trigger(kind) not in present]
    time = spec.col(spec.time)
    overdue = conn.execute(
        f"""SELECT count(*) FROM {spec.qtable}
             WHERE {spec.pending(spec.col(spec.state))}
               AND julianday({time}) < julianday(:cutoff)""",
        {"cutoff": to_db_time(now - OVERDUE_AFTER)},
    ).fetchone()[0]
    report, errors = repair_transition(conn, spec, now, dry_run=True)
    return TransitionHealth(
        transition=spec.name,
        table=spec.table,
        paused=spec.paused,
        triggers=len(TRIGGER_KINDS) - len(missing),
        pending_rows=report["total"],
        missing_jobs=report["jobs_scheduled"],
        orphan_jobs=report["orphans_removed"],
        overdue_rows=int(overdue),
        missing_triggers=missing,
        unreadable_rows=len(errors),
    )


# -- list_jobs and history ------------------------------------------------------------------


def _next_run(schedule: str, after: datetime) -> datetime | None:
    try:
        return cron.next_run(schedule, after)
    except cron.CronError:
        return None


def transition_jobs(conn: sqlite3.Connection, now: datetime, name: str | None = None) -> list[Job]:
    """Twin of scheduler.transition_jobs(): the jobs of every non-builtin transition whose
    table exists (or of the one named: :func:`named_transitions`), as list_jobs shows them: the
    key is the job name after the prefix, the row's time (ISO UTC) and state are None when no
    row has that key (an orphan job). Unsorted."""
    result: list[Job] = []
    for spec in named_transitions(conn, name):
        key = spec.col(spec.key, "t")
        sql = f"""SELECT c.jobid, c.jobname, c.schedule, c.active,
                         substr(c.jobname, length(:prefix) + 1) AS key,
                         {spec.col(spec.time, "t")} AS time,
                         {spec.col(spec.state, "t")} AS state
                    FROM cron_job c
                    LEFT JOIN {spec.qtable} t
                      ON {key} = substr(c.jobname, length(:prefix) + 1)
                     AND :prefix || CAST({key} AS TEXT) = c.jobname
                   WHERE {_prefix_sql("c.jobname")}"""
        for row in conn.execute(sql, {"prefix": spec.prefix}).fetchall():
            active = bool(row["active"])
            schedule = str(row["schedule"])
            result.append(
                Job(
                    meeting_id=None,
                    job_id=int(row["jobid"]),
                    job_name=str(row["jobname"]),
                    schedule=schedule,
                    next_run=iso(_next_run(schedule, now)) if active else None,
                    end_time=iso_text(row["time"]),
                    meeting_status=None if row["state"] is None else str(row["state"]),
                    active=active,
                    transition=spec.name,
                    key=str(row["key"]),
                    registered_at=None,
                )
            )
    return result


def command_head(name: str) -> str:
    """How the commands of the jobs of the transition ``name`` start (``complete_transition('
    <name>', ``): history and the retention select its runs with it."""
    return f"complete_transition({quote_text(name)}, "


def job_name_of(conn: sqlite3.Connection, name: str, key: str) -> str | None:
    """The job name of the key ``key`` of the transition ``name`` (None when the transition is
    no longer registered: its prefix is gone with it)."""
    row = _lookup(conn, name)
    return None if row is None else str(row["job_prefix"]) + key
