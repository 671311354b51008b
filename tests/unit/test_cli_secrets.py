"""The CLI never prints a password, and a malformed URL is an ``Error:`` with a hint.

The CLI runs in-process (``scheduler_admin.cli.main``) against 127.0.0.1 port 1, where nothing
listens: every command fails, at parsing or at connecting, as it would for an operator.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cli_helpers import run
from secret_helpers import NAMED, generated_passwords, leaked, url_forms

VERBOSITY = [[], ["-v"], ["-vv"]]
PASSWORDS = NAMED + generated_passwords(24, seed=11)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "SCHEDULER_DATABASE_URL",
        "DATABASE_URL",
        "ENVIRONMENT",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_DB_URL",
        "SCHEDULER_JOBSTORE_URL",
        "ENABLE_MEETING_STATUS_UPDATES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("password", "markers"), PASSWORDS, ids=lambda v: repr(v)[:40])
def test_list_jobs_never_prints_the_password(
    capsys: pytest.CaptureFixture[str], password: str, markers: list[str]
) -> None:
    for url in url_forms(password):
        for verbosity in VERBOSITY:
            code, out, err = run(capsys, *verbosity, "--database-url", url, "list-jobs")
            assert code == 1 and out == "", (url, verbosity, err)
            assert "\nError: " in f"\n{err}", err
            assert not leaked(markers, err), (url, verbosity, err)
            assert ("Traceback" in err) == (verbosity == ["-vv"]), (url, verbosity, err)


@pytest.mark.parametrize(("password", "markers"), NAMED + generated_passwords(6, seed=12))
def test_migrate_never_prints_the_password(
    capsys: pytest.CaptureFixture[str], password: str, markers: list[str]
) -> None:
    """``migrate`` goes through SQLAlchemy and alembic, which read the URL their own way."""
    for url in url_forms(password):
        for verbosity in ([], ["-vv"]):
            code, out, err = run(capsys, *verbosity, "--database-url", url, "migrate")
            assert code == 1, (url, err)
            assert not leaked(markers, out, err), (url, verbosity, err)


@pytest.mark.parametrize(("password", "markers"), NAMED)
def test_urls_from_the_environment_are_masked_too(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    password: str,
    markers: list[str],
) -> None:
    for url in url_forms(password):
        monkeypatch.setenv("SCHEDULER_DATABASE_URL", url)
        code, _, err = run(capsys, "-vv", "doctor")
        assert code == 1 and "Error: " in err
        assert not leaked(markers, err), (url, err)


def test_a_url_given_as_a_stray_argument_is_masked_in_the_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "list-jobs", "postgresql://app:Kb2Qx@Mr3Qz@db.example/app")
    assert code == 2
    assert "Got unexpected extra argument" in err
    assert not leaked(["Kb2Qx", "Mr3Qz"], err), err


@pytest.mark.parametrize(
    "url", ["postgresql://u:Kb2Qx@[::1/db", "postgresql://u:Kb2Qx@[zz]:5432/db"]
)
@pytest.mark.parametrize("command", ["list-jobs", "doctor", "migrate", "recover"])
def test_malformed_ipv6_url_is_an_error_with_a_hint(
    capsys: pytest.CaptureFixture[str], url: str, command: str
) -> None:
    for verbosity in VERBOSITY:
        code, out, err = run(capsys, *verbosity, "--database-url", url, command)
        assert code == 1 and out == ""
        lines = err.rstrip("\n").splitlines()
        assert lines[-2].startswith("Error: invalid database URL postgresql://u:***@"), err
        assert lines[-1].startswith("Hint: Write an IPv6 address in brackets"), err
        assert ("Traceback (most recent call last)" in err) == (verbosity == ["-vv"]), err
        if verbosity != ["-vv"]:
            assert len(lines) == 2, err
        assert "Kb2Qx" not in err


def test_v_logs_at_info_and_only_vv_shows_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://app:Kb2Qx@127.0.0.1:1/db"
    handlers = list(logging.getLogger().handlers)
    level = logging.getLogger().level

    code, _, err = run(capsys, "--database-url", url, "list-jobs")
    assert code == 1 and "INFO" not in err and "Traceback" not in err
    assert err.startswith("Error: cannot connect to postgresql://app:***@127.0.0.1:1/db: ")

    code, _, err = run(capsys, "-v", "--database-url", url, "list-jobs")
    assert code == 1
    assert (
        "INFO scheduler_admin: using postgresql://app:***@127.0.0.1:1/db (from --database-url)"
        in err
    )
    assert "Traceback" not in err and "DEBUG" not in err

    code, _, err = run(capsys, "-vv", "--database-url", url, "list-jobs")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "scheduler_admin.exceptions.ConnectionFailed: cannot connect to" in err
    lines = err.rstrip("\n").splitlines()
    assert lines[-2].startswith("Error: cannot connect to") and lines[-1].startswith("Hint: ")
    assert "Kb2Qx" not in err

    # each run removes its log handler and restores the level
    assert logging.getLogger().handlers == handlers and logging.getLogger().level == level
