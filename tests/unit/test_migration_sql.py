"""`scheduler-admin sql`: the packaged migrations as one SQL script, without a database.

tests/supabase/test_migration_sql.py applies the script with psql and compares the result with
alembic's."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from cli_helpers import run
from click.testing import CliRunner

from scheduler_admin import config
from scheduler_admin.cli import cli
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.migrate import alembic_config
from scheduler_admin.migration_sql import migration_sql, plan
from scheduler_admin.schema import read_sql, released_revision_sql, revision_sql_dir

BEFORE = read_sql("postgres", "migration_env/before_revisions.sql")
AFTER = read_sql("postgres", "migration_env/after_revisions.sql")


def revisions() -> list[Any]:
    """The alembic revision scripts, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return list(reversed(list(scripts.walk_revisions())))


def applied_by(
    module: Any, function: str, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, str]]:
    """The files a revision's upgrade() or downgrade() applies on PostgreSQL, as it runs them."""
    applied: list[tuple[str, str]] = []
    bind = SimpleNamespace(dialect=SimpleNamespace(name="postgresql"))
    with monkeypatch.context() as patch:
        patch.setattr(module, "op", SimpleNamespace(get_bind=lambda: bind))
        patch.setattr(
            module,
            "apply_revision_files",
            lambda _bind, files, delta_of=None: applied.extend(files),
        )
        getattr(module, function)()
    return applied


def file_text(revision: str, name: str, upgrading: str | None = None) -> str:
    """A frozen file as a migration applies it: exactly as it is on disk (no newline
    translation) when it belongs to the revision being upgraded to, its delta; any other as the
    revision released it (markers expanded)."""
    if revision == upgrading:
        return (revision_sql_dir(revision, "postgres") / name).read_bytes().decode("utf-8")
    return released_revision_sql(revision, "postgres", name)


def in_order(script: str, parts: list[str]) -> bool:
    """Every part occurs in the script, each after the previous one."""
    position = 0
    for part in parts:
        found = script.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


def statements(script: str) -> list[str]:
    """The lines of the script that are not comments, blank, or inside a copied file."""
    return [line for line in script.splitlines() if line and not line.startswith("--")]


def test_the_lists_are_what_each_revision_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script reads each revision module's lists; they are what its upgrade() and
    downgrade() apply through alembic."""
    every = revisions()
    up = plan(start=None, end="head", downgrade=False)
    down = plan(start="head", end="base", downgrade=True)
    assert [s.revision for s in up.steps] == [r.revision for r in every]
    assert [s.revision for s in down.steps] == [r.revision for r in reversed(every)]
    for step, script in zip(up.steps, every, strict=True):
        assert list(step.files) == applied_by(script.module, "upgrade", monkeypatch)
        # every revision applies something; 0013 only on SQLite (PostgreSQL keeps microseconds)
        assert step.files or script.module.UPGRADE_FILES["sqlite"], script.revision
    for step, script in zip(down.steps, reversed(every), strict=True):
        assert list(step.files) == applied_by(script.module, "downgrade", monkeypatch)


def test_upgrade_is_one_transaction_with_every_file_in_order() -> None:
    script = migration_sql(start=None, end="head", downgrade=False)
    head = revisions()[-1].revision
    assert script.startswith("-- Meeting status scheduler: database upgrade from revision base to ")
    header, _, body = script.partition("\nbegin;\n")
    assert all(line.startswith("--") or not line for line in header.splitlines())
    assert "supabase db push" in header and "psql -v ON_ERROR_STOP=1" in header
    for revision in revisions():
        assert f"--   {revision.revision}  " in header
    assert body.endswith(AFTER + "\ncommit;\n")
    assert statements(script)[0] == "begin;" and statements(script)[-1] == "commit;"
    assert script.count("\nbegin;\n") == 1 and script.count("\ncommit;\n") == 1

    expected = [BEFORE, "create table if not exists scheduler.alembic_version ("]
    previous = None
    for step in plan(start=None, end="head", downgrade=False).steps:
        # the step's own files as their delta, files of earlier revisions as released
        expected += [file_text(revision, name, step.revision) for revision, name in step.files]
        expected.append(
            f"insert into scheduler.alembic_version (version_num) values ('{step.revision}');"
            if previous is None
            else f"update scheduler.alembic_version set version_num = '{step.revision}' "
            f"where version_num = '{previous}';"
        )
        previous = step.revision
    expected.append(AFTER)
    assert in_order(body, expected)
    assert previous == head


def test_version_table_is_created_as_alembic_creates_it_and_checked() -> None:
    script = migration_sql(start=None, end="head", downgrade=False)
    assert (
        "create table if not exists scheduler.alembic_version (\n"
        "    version_num varchar(32) not null,\n"
        "    constraint alembic_version_pkc primary key (version_num)\n"
        ");\n"
    ) in script
    # an unmigrated database is expected: any version row stops the script
    assert "if v_versions is not null then" in script


def test_from_a_revision_leaves_out_the_revisions_before_it() -> None:
    script = migration_sql(start="0002", end="head", downgrade=False)
    steps = plan(start="0002", end="head", downgrade=False).steps
    assert [s.revision for s in steps] == [r.revision for r in revisions()][2:]
    assert "-- ==== 0001 upgrade" not in script and "-- ==== 0002 upgrade" not in script
    assert "insert into scheduler.alembic_version" not in script
    assert "set version_num = '0002'" not in script
    assert "if v_versions is distinct from '0002' then" in script
    assert "scheduler-admin sql --from 0002" in script  # the header's command
    included = {file_text(r, n, s.revision) for s in steps for r, n in s.files}
    for path in sorted((revision_sql_dir("0001", "postgres")).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        if text not in included:
            assert text not in script, path.name
    assert in_order(script, [BEFORE, *sorted(included, key=script.find), AFTER, "commit;"])


def test_to_a_revision_stops_there() -> None:
    script = migration_sql(start=None, end="0001", downgrade=False)
    assert "-- ==== 0002 upgrade" not in script
    assert "insert into scheduler.alembic_version (version_num) values ('0001');" in script
    assert "update scheduler.alembic_version" not in script


def test_downgrade_runs_the_downgrade_files_newest_revision_first_and_ends_at_base() -> None:
    script = migration_sql(start="head", end="base", downgrade=True)
    steps = plan(start="head", end="base", downgrade=True).steps
    assert [s.revision for s in steps] == [r.revision for r in reversed(revisions())]
    assert script.startswith(
        f"-- Meeting status scheduler: database downgrade from revision {steps[0].revision} to base"
    )
    expected = [BEFORE, f"if v_versions is distinct from '{steps[0].revision}' then"]
    for step in steps:
        expected += [file_text(revision, name) for revision, name in step.files]
        expected.append(
            f"update scheduler.alembic_version set version_num = '{step.down_revision}' "
            f"where version_num = '{step.revision}';"
            if step.down_revision
            else f"delete from scheduler.alembic_version where version_num = '{step.revision}';"
        )
    expected += [AFTER, "commit;"]
    assert in_order(script, expected)
    # alembic deletes its last row at base and keeps the (empty) table
    assert script.rstrip().endswith("commit;")
    assert not re.search(r"drop table[^;]*alembic_version", script, re.IGNORECASE)
    assert "insert into scheduler.alembic_version" not in script


def test_downgrade_to_a_revision() -> None:
    script = migration_sql(start="head", end="0002", downgrade=True)
    assert [s.revision for s in plan(start="head", end="0002", downgrade=True).steps] == [
        r.revision for r in revisions()
    ][2:][::-1]
    assert "delete from scheduler.alembic_version" not in script
    assert "-- ==== 0002 downgrade" not in script


@pytest.mark.parametrize(
    ("kwargs", "message", "hint"),
    [
        (
            {"start": "nope", "end": "head", "downgrade": False},
            "--from nope: Can't locate revision identified by 'nope'",
            "Revisions: base, 0001, 0002",
        ),
        (
            {"start": None, "end": "9999", "downgrade": False},
            "--to 9999: Can't locate revision identified by '9999'",
            "Revisions: base, 0001",
        ),
        (
            {"start": "0003", "end": "0001", "downgrade": False},
            "cannot upgrade from 0003 to 0001",
            "scheduler-admin sql --downgrade --from 0003 --to 0001",
        ),
        (
            {"start": "0001", "end": "head", "downgrade": True},
            "cannot downgrade from 0001 to",
            "leave out --downgrade",
        ),
        (
            {"start": "base", "end": "0002", "downgrade": True},
            "cannot downgrade from base to 0002",
            "scheduler-admin sql --from 0002 --to base",
        ),
    ],
)
def test_unknown_or_misordered_revisions_are_invalid_input(
    kwargs: dict[str, Any], message: str, hint: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        migration_sql(**kwargs)
    assert message in info.value.message
    assert info.value.hint and hint in info.value.hint


def test_files_are_copied_byte_for_byte_and_safe_for_psql() -> None:
    """psql runs the script as it is: no file may hold a psql variable reference (:name,
    :'name', :"name") or a backslash command outside a string, or a transaction statement of
    its own."""
    up = plan(start=None, end="head", downgrade=False).steps
    down = plan(start="head", end="base", downgrade=True).steps
    scripts = migration_sql(start=None, end="head", downgrade=False) + migration_sql(
        start="head", end="base", downgrade=True
    )
    for step, own in [(s, s.revision) for s in up] + [(s, None) for s in down]:
        for revision, name in step.files:
            assert file_text(revision, name, own) in scripts, (revision, name)
    for line in scripts.splitlines():
        assert not re.search(r"(?<![:\w]):['\"A-Za-z_{]", line), line
        assert not line.lstrip().startswith("\\"), line
    assert len(re.findall(r"^\s*(?:begin|commit|rollback)\s*;", scripts, re.M | re.I)) == 4


@pytest.fixture
def no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No environment variable at all, an empty directory, and configuration that fails if
    anything asks for it."""
    for key in list(os.environ):
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("`scheduler-admin sql` resolved the configuration")

    monkeypatch.setattr(config, "resolve", refuse)


@pytest.mark.usefixtures("no_configuration")
def test_cli_prints_the_script_without_configuration() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["sql"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout == migration_sql(start=None, end="head", downgrade=False)
    result = runner.invoke(cli, ["sql", "--from", "0002", "--to", "head"], catch_exceptions=False)
    assert result.stdout == migration_sql(start="0002", end="head", downgrade=False)
    result = runner.invoke(cli, ["sql", "--downgrade"], catch_exceptions=False)
    assert result.stdout == migration_sql(start="head", end="base", downgrade=True)
    result = runner.invoke(cli, ["sql", "--downgrade", "--to", "0002"], catch_exceptions=False)
    assert result.stdout == migration_sql(start="head", end="0002", downgrade=True)


@pytest.mark.usefixtures("no_configuration")
def test_cli_help_says_what_it_prints() -> None:
    result = CliRunner().invoke(cli, ["sql", "--help"])
    assert result.exit_code == 0
    assert "Print the migration as one plain SQL script on stdout" in result.output
    for option in ("--from REV", "--to REV", "--downgrade"):
        assert option in result.output


@pytest.mark.usefixtures("no_configuration")
def test_cli_unknown_revision_prints_error_and_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sql", "--from", "nope")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "Error: --from nope: Can't locate revision identified by 'nope'",
        "Hint: Revisions: " + ", ".join(["base", *(r.revision for r in revisions()), "head"]) + ".",
    ]


def test_status_words_are_passed_to_the_script_as_alembic_passes_them() -> None:
    """--pending-status and friends become the settings migrations/env.py would set, quoted,
    right after begin (after_revisions.sql reads them)."""
    script = migration_sql(
        start=None,
        end="head",
        downgrade=False,
        statuses={
            "pending_status": "scheduled",
            "done_status": "it's done",
            "cancelled_status": "",
        },
    )
    begin = script.index("\nbegin;\n")
    settings = script.index(
        "select pg_catalog.set_config('scheduler.pending_status', 'scheduled', true);"
    )
    assert begin < settings < script.index("==== migration_env/before_revisions.sql ====")
    assert "select pg_catalog.set_config('scheduler.done_status', 'it''s done', true);" in script
    assert "set_config('scheduler.cancelled_status'" not in script  # not given: kept as it is
    plain = migration_sql(start=None, end="head", downgrade=False)
    assert "==== the words of meetings.status to act on ====" not in plain
    assert "set_config('scheduler.pending_status'" not in plain
