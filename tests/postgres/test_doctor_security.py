"""doctor reports set-ups that would let a role gain rights through the jobs: TRIGGER on meetings
granted to another role, trigger functions written by another role, meetings writable by API
roles without row-level security."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cli_helpers import run
from pg_helpers import Conn, Server

ROLE = "scheduler_test_trigger_holder"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT", "SUPABASE_DB_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def other_role(db: Conn) -> Iterator[str]:
    db.execute(f"drop role if exists {ROLE}")
    db.execute(f"create role {ROLE}")
    try:
        yield ROLE
    finally:
        db.execute("drop trigger if exists foreign_audit on public.meetings")
        db.execute("drop function if exists public.foreign_audit()")
        db.execute("alter table public.meetings enable row level security")
        db.execute(f"drop owned by {ROLE}")
        db.execute(f"drop role {ROLE}")


def failed_checks(capsys: pytest.CaptureFixture[str], url: str) -> dict[str, dict[str, str]]:
    code, out, err = run(capsys, "--json", "--database-url", url, "doctor")
    report = json.loads(out)
    failed = {c["name"]: c for c in report["checks"] if not c["ok"]}
    assert code == (1 if failed else 0), err
    return failed


def test_doctor_fails_when_another_role_may_add_triggers(
    db: Conn, migrated: Server, other_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A role holding TRIGGER on meetings could run code as the owner through any job run."""
    assert failed_checks(capsys, migrated.url) == {}
    db.execute(f"grant trigger on public.meetings to {other_role}")
    failed = failed_checks(capsys, migrated.url)
    assert set(failed) == {"only the owner may add triggers to meetings"}
    check = failed["only the owner may add triggers to meetings"]
    assert other_role in check["detail"]
    assert f"revoke trigger on public.meetings from {other_role};" in check["fix"]


def test_doctor_fails_on_a_trigger_function_written_by_another_role(
    db: Conn, migrated: Server, other_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A security-invoker trigger function owned by a role that is neither the owner nor a
    superuser runs with the owner's rights whenever a job completes a meeting."""
    db.execute(
        "create function public.foreign_audit() returns trigger language plpgsql "
        "as $$ begin return new; end $$"
    )
    db.execute(
        "create trigger foreign_audit before update on public.meetings "
        "for each row execute function public.foreign_audit()"
    )
    # written by the owner (here a superuser): reported, not a failure
    assert failed_checks(capsys, migrated.url) == {}
    _code, out, _ = run(capsys, "--json", "--database-url", migrated.url, "doctor")
    (other,) = [c for c in json.loads(out)["checks"] if c["name"] == "other triggers on meetings"]
    assert "foreign_audit" in other["detail"]

    db.execute(f"alter function public.foreign_audit() owner to {other_role}")
    failed = failed_checks(capsys, migrated.url)
    assert set(failed) == {"other triggers on meetings"}
    assert (
        "foreign_audit (public.foreign_audit, owned by " + other_role
        in (failed["other triggers on meetings"]["detail"])
    )


def test_doctor_fails_when_public_may_write_meetings_without_row_level_security(
    db: Conn, migrated: Server, other_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db.execute("alter table public.meetings disable row level security")
    assert failed_checks(capsys, migrated.url) == {}  # nobody but the owner may write it
    db.execute("grant insert on public.meetings to public")
    failed = failed_checks(capsys, migrated.url)
    assert set(failed) == {"row-level security on meetings"}
    assert "PUBLIC may write meetings" in failed["row-level security on meetings"]["detail"]
    db.execute("revoke insert on public.meetings from public")
