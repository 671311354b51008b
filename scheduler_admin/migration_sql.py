"""The packaged migrations as one plain SQL script (``scheduler-admin sql``).

For deployments that apply SQL files rather than run alembic, the Supabase CLI above all
(``supabase/migrations/<timestamp>_scheduler.sql``, applied by ``supabase db push``). The script
does on PostgreSQL what ``alembic upgrade`` (or ``downgrade``) does through ``migrations/env.py``,
in the same order and in one transaction: ``migration_env/before_revisions.sql``, alembic's
version table created if missing, each revision's frozen files (the lists of its module in
``migrations/versions/``, read through alembic's ``ScriptDirectory``) followed by the version
row alembic writes for it, then ``migration_env/after_revisions.sql``. A database set up from
the script is therefore at the same revision for alembic as one migrated by it, and
``scheduler-admin migrate`` (or the next script, printed with ``--from``) takes over from there.

The files are copied into the script exactly as alembic applies them: psql and the Supabase CLI
run them as they are. The only statements of our own are the transaction, the version table and
a check that the database is at the revision the script starts from (alembic reads the current
revision; a script cannot, so it refuses a database at another one).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.schema import SqlDialect, read_revision_sql, read_sql, released_revision_sql

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

DIALECT = "postgresql"  # the key of the revision modules' file lists
BACKEND: SqlDialect = "postgres"  # the directory of their frozen SQL
VERSION_TABLE = "scheduler.alembic_version"
# alembic's version table, as alembic creates it (alembic.ddl.impl.DefaultImpl.version_table_impl)
CREATE_VERSION_TABLE = f"""\
create table if not exists {VERSION_TABLE} (
    version_num varchar(32) not null,
    constraint alembic_version_pkc primary key (version_num)
);
"""
BASE = "base"


@dataclass(frozen=True)
class Step:
    """One revision applied (upgrade) or undone (downgrade): its files, then its version row."""

    revision: str
    down_revision: str | None
    doc: str
    files: tuple[tuple[str, str], ...]


def _script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    from scheduler_admin.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config())


def _resolve(scripts: ScriptDirectory, name: str | None, option: str) -> str | None:
    """The full revision id that ``name`` means (None: base)."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    if name is None or name == BASE:
        return None
    try:
        script = scripts.get_revision(name)
    except (CommandError, RevisionError) as exc:
        raise InvalidInput(
            f"{option} {name}: {exc}", hint=f"Revisions: {', '.join(_known(scripts))}."
        ) from None
    if script is None:
        return None
    return script.revision


def _known(scripts: ScriptDirectory) -> list[str]:
    ids = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    return [BASE, *ids, "head"]


def _files(script: Script, attribute: str) -> tuple[tuple[str, str], ...]:
    """A revision's files for PostgreSQL as ``(revision, file name)``; a bare name is a file of
    the revision itself (0001 lists bare names, later revisions pairs)."""
    entries: Sequence[str | tuple[str, str]] = getattr(script.module, attribute)[DIALECT]
    return tuple(
        (script.revision, entry) if isinstance(entry, str) else (entry[0], entry[1])
        for entry in entries
    )


@dataclass(frozen=True)
class Plan:
    """A migration: from revision ``first`` to ``last`` (None: base), its steps in order."""

    first: str | None
    last: str | None
    steps: tuple[Step, ...]


def plan(*, start: str | None, end: str, downgrade: bool) -> Plan:
    """The revisions from ``start`` to ``end`` in the order they run, each with its files."""
    scripts = _script_directory()
    first = _resolve(scripts, start, "--from")
    last = _resolve(scripts, end, "--to")
    return Plan(first, last, _steps(scripts, first, last, downgrade))


def _steps(
    scripts: ScriptDirectory, first: str | None, last: str | None, downgrade: bool
) -> tuple[Step, ...]:
    from alembic.script.revision import RevisionError

    upper, lower = (first, last) if downgrade else (last, first)
    if upper is None:  # from base down, or up to base: nothing to do unless both are base
        if lower is not None:
            raise _wrong_direction(first, last, downgrade)
        return ()
    try:
        found = list(scripts.iterate_revisions(upper, lower or BASE))
    except RevisionError:
        raise _wrong_direction(first, last, downgrade) from None
    if not downgrade:
        found.reverse()
    attribute = "DOWNGRADE_FILES" if downgrade else "UPGRADE_FILES"
    result = []
    for script in found:
        down = script.down_revision
        if down is not None and not isinstance(down, str):
            raise InvalidInput(f"revision {script.revision} merges branches: not supported")
        result.append(
            Step(script.revision, down, " ".join(script.doc.split()), _files(script, attribute))
        )
    return tuple(result)


def _wrong_direction(first: str | None, last: str | None, downgrade: bool) -> InvalidInput:
    a, b = first or BASE, last or BASE
    if downgrade:
        return InvalidInput(
            f"cannot downgrade from {a} to {b}: {b} is not older than {a}",
            hint=f"To upgrade, leave out --downgrade: scheduler-admin sql --from {b} --to {a}",
        )
    return InvalidInput(
        f"cannot upgrade from {a} to {b}: {a} is not older than {b}",
        hint=f"To downgrade: scheduler-admin sql --downgrade --from {a} --to {b}",
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _expect_version(revision: str | None, downgrade: bool) -> str:
    """A check that the database is at ``revision`` (None: no revision recorded, i.e. base)."""
    command = "scheduler-admin sql --downgrade" if downgrade else "scheduler-admin sql"
    raise_at_base = ""
    if revision is not None:
        problem, fix = (
            ("nothing to downgrade", f"{VERSION_TABLE} records no revision.")
            if downgrade
            else (
                f"this script starts at {revision}",
                f"Print the script that starts there: {command}",
            )
        )
        raise_at_base = f"""\
    if v_versions is null then
        raise exception 'the database is at base (no revision): {problem}'
            using errcode = 'object_not_in_prerequisite_state',
                  hint = '{fix}';
    end if;
"""
    where = "at base" if revision is None else f"at {revision}"
    return f"""\
do $expect_version$
declare
    v_versions pg_catalog.text;
begin
    select pg_catalog.string_agg(v.version_num, ', ') into v_versions
    from {VERSION_TABLE} v;
{raise_at_base}\
    if v_versions {f"is distinct from {_literal(revision)}" if revision else "is not null"} then
        raise exception 'the database is at revision %, and this script starts {where}', v_versions
            using errcode = 'object_not_in_prerequisite_state',
                  hint = pg_catalog.format(
                      'Print the script that starts there: {command} --from %s', v_versions);
    end if;
end
$expect_version$;
"""


def _version_statement(before: str | None, after: str | None) -> str:
    """The statement alembic runs on its version table after a revision."""
    if before is None and after is not None:
        return f"insert into {VERSION_TABLE} (version_num) values ({_literal(after)});\n"
    if after is None and before is not None:
        return f"delete from {VERSION_TABLE} where version_num = {_literal(before)};\n"
    assert before is not None and after is not None
    return (
        f"update {VERSION_TABLE} set version_num = {_literal(after)} "
        f"where version_num = {_literal(before)};\n"
    )


def _version() -> str:
    try:
        return metadata.version("scheduler-admin")
    except metadata.PackageNotFoundError:
        return "unknown"


def _comment(lines: Iterable[str]) -> str:
    return "".join(f"-- {line}".rstrip() + "\n" for line in lines)


def _header(
    first: str | None, last: str | None, done: Sequence[Step], downgrade: bool, command: str
) -> str:
    a, b = first or BASE, last or BASE
    verb = "downgrade" if downgrade else "upgrade"
    lines = [
        f"Meeting status scheduler: database {verb} from revision {a} to {b} (PostgreSQL).",
        f"Printed by `{command}` (scheduler-admin {_version()}); do not edit.",
        "",
        f"It does what `alembic {verb} {b}` does on a database at revision {a}, in one",
        "transaction: migration_env/before_revisions.sql, each revision's frozen SQL files (copied",
        f"as they are) with alembic's version row in {VERSION_TABLE}, then",
        "migration_env/after_revisions.sql. It refuses a database at another revision, and",
        "leaves the database at the revision alembic records, so alembic (`scheduler-admin",
        "migrate`) or the next script (`scheduler-admin sql --from <revision>`) takes over.",
        "",
    ]
    if done:
        lines.append("Revisions " + ("undone:" if downgrade else "applied:"))
        for step in done:
            lines += textwrap.wrap(
                f"{step.revision}  {step.doc}",
                width=96,
                initial_indent="  ",
                subsequent_indent="        ",
            )
    else:
        lines.append("Revisions: none (the version table is only checked).")
    lines += [
        "",
        "Apply it as the owner of public.meetings (on Supabase: the postgres role), either",
        "  with the Supabase CLI: save it as supabase/migrations/<timestamp>_scheduler.sql and",
        "  run `supabase db push`, or",
        "  with psql: psql -v ON_ERROR_STOP=1 -X -f <file> <connection string>",
    ]
    return _comment(lines)


def _section(title: str) -> str:
    return f"\n-- ==== {title} ====\n"


def _command(start: str | None, end: str, downgrade: bool) -> str:
    parts = ["scheduler-admin sql"]
    if downgrade:
        parts.append("--downgrade")
    if downgrade or (start is not None and start != BASE):
        parts.append(f"--from {start or BASE}")
    if downgrade or end != "head":
        parts.append(f"--to {end}")
    return " ".join(parts)


def _status_settings(statuses: Mapping[str, str]) -> str:
    """The status words for after_revisions.sql, as migrations/env.py passes them: settings of
    the script's transaction (quoted as SQL literals)."""
    lines = [
        f"select pg_catalog.set_config('scheduler.{name}', {_literal(word)}, true);\n"
        for name, word in statuses.items()
    ]
    return "".join(lines)


def migration_sql(
    *,
    start: str | None,
    end: str,
    downgrade: bool,
    statuses: Mapping[str, str] | None = None,
) -> str:
    """The migration from revision ``start`` (None or ``"base"``: an unmigrated database) to
    ``end`` (``"head"``, ``"base"``, a revision) as one SQL script; downgrade when ``downgrade``.
    ``statuses`` (``pending_status``, ``done_status``, ``cancelled_status``) are the words of
    meetings.status to act on, as alembic's ``-x`` options give them.
    Raises InvalidInput for an unknown revision or one on the wrong side of the other."""
    migration = plan(start=start, end=end, downgrade=downgrade)
    first, last, done = migration.first, migration.last, migration.steps
    command = _command(start, end, downgrade)
    parts = [_header(first, last, done, downgrade, command), "\nbegin;\n"]
    words = {name: word for name, word in (statuses or {}).items() if word}
    if words:
        parts += [_section("the words of meetings.status to act on"), _status_settings(words)]
    parts += [
        _section("migration_env/before_revisions.sql"),
        read_sql(BACKEND, "migration_env/before_revisions.sql"),
        _section(f"alembic's version table; the database must be at revision {first or BASE}"),
        CREATE_VERSION_TABLE,
        "\n",
        _expect_version(first, downgrade),
    ]
    for step in done:
        verb = "downgrade" if downgrade else "upgrade"
        for revision, name in step.files:
            parts += [
                _section(f"{step.revision} {verb}: sql/revisions/{revision}/{BACKEND}/{name}"),
                # the upgrade's own files as their delta; any other as released
                read_revision_sql(revision, BACKEND, name)
                if revision == step.revision and not downgrade
                else released_revision_sql(revision, BACKEND, name),
            ]
        before, after = (
            (step.revision, step.down_revision)
            if downgrade
            else (step.down_revision, step.revision)
        )
        parts += [
            _section(f"{step.revision} {verb}: alembic's version row, now {after or BASE}"),
            _version_statement(before, after),
        ]
    parts += [
        _section("migration_env/after_revisions.sql"),
        read_sql(BACKEND, "migration_env/after_revisions.sql"),
        "\ncommit;\n",
    ]
    return "".join(parts)
