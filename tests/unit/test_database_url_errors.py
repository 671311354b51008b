"""One wrong database URL, one answer (issue 24, item 4): every command and the service reject
``sqlite://scheduler_jobs.db`` (two slashes) alike, with the URL to use; a value that holds no
secret is shown as given, not as ``***``."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler_admin import SchedulerService, config
from scheduler_admin.backends import open_backend
from scheduler_admin.exceptions import ConfigurationError
from tests.cli_helpers import run

MEETING = "6f1d2c3b-0000-4000-8000-000000000001"
# every command that opens the configured database, with the arguments it needs
COMMANDS = [
    ("list-jobs",),
    ("migrate",),
    ("doctor",),
    ("recover",),
    ("recover", "--dry-run"),
    ("history",),
    ("events",),
    ("metrics",),
    ("pause",),
    ("resume",),
    ("worker", "--once"),
    ("schedule", MEETING, "2030-01-01T10:00:00Z"),
    ("cancel", MEETING),
    ("transitions", "list"),
]


@pytest.fixture(autouse=True)
def _no_database_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "SCHEDULER_DATABASE_URL",
        "DATABASE_URL",
        "SUPABASE_DB_URL",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SCHEDULER_JOBSTORE_URL",
        "ENVIRONMENT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may create scheduler_jobs.db elsewhere


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_two_slashes_are_rejected_by_every_command(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "--database-url", "sqlite://scheduler_jobs.db", *command)
    assert code == 1, err
    assert out == ""
    assert (
        "Error: invalid SQLite URL 'sqlite://scheduler_jobs.db' (from --database-url): with two "
        "slashes 'scheduler_jobs.db' is read as a host name, not a file" in err
    )
    assert "Hint: Use sqlite:///scheduler_jobs.db." in err
    assert ":memory:" not in err
    assert not (tmp_path / "scheduler_jobs.db").exists()


@pytest.mark.parametrize("command", [("list-jobs",), ("migrate",), ("doctor",)], ids=" ".join)
def test_two_slashes_from_the_environment(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_JOBSTORE_URL", "sqlite://scheduler_jobs.db")
    code, _, err = run(capsys, *command)
    assert code == 1
    assert "invalid SQLite URL 'sqlite://scheduler_jobs.db' (from SCHEDULER_JOBSTORE_URL)" in err
    assert "Hint: Use sqlite:///scheduler_jobs.db." in err


@pytest.mark.parametrize(
    ("url", "words", "fix"),
    [
        ("sqlite://scheduler_jobs.db", "read as a host name", "sqlite:///scheduler_jobs.db"),
        ("sqlite://data/jobs.db", "'data' is read as a host name", "sqlite:///data/jobs.db"),
        ("sqlite:scheduler_jobs.db", "must be followed by slashes", "sqlite:///scheduler_jobs.db"),
        ("sqlite:/abs/jobs.db", "must be followed by slashes", "sqlite:////abs/jobs.db"),
        ("scheduler_jobs.db", "not a URL (it has no scheme)", "sqlite:///scheduler_jobs.db"),
        ("/var/lib/app/jobs.db", "not a URL (it has no scheme)", "sqlite:////var/lib/app/jobs.db"),
    ],
)
def test_each_wrong_url_names_the_fix(url: str, words: str, fix: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        config.resolve(url, {})
    assert words in error.value.message
    assert f"{url!r}" in error.value.message  # shown as given: it holds no secret
    assert f"use {fix}." in (error.value.hint or "").lower()


def test_a_file_path_is_shown_not_masked(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--database-url", "scheduler_jobs.db", "list-jobs")
    assert code == 1
    assert "unsupported database URL 'scheduler_jobs.db' (from --database-url)" in err
    assert "'***'" not in err
    assert "sqlite:///scheduler_jobs.db" in err


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("u:s3cretpw@host/db", "s3cretpw"),
        ("postgresql:/u:s3cretpw@h/db", "s3cretpw"),
        ("sqlite://u:s3cretpw@h/x.db", "s3cretpw"),
        ("mysql://u:s3cretpw@h/db", "s3cretpw"),
    ],
)
def test_a_url_with_a_password_stays_masked(
    url: str, secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--database-url", url, "list-jobs")
    assert code == 1
    assert "Error: " in err
    assert secret not in out + err


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///scheduler_jobs.db", "sqlite:////a/b.db"]
)
def test_valid_sqlite_urls_pass(url: str) -> None:
    assert config.resolve(url, {}).backend == "sqlite"


def test_the_service_rejects_two_slashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """From the environment, and from settings built without resolve()."""
    import asyncio

    monkeypatch.setenv("SCHEDULER_JOBSTORE_URL", "sqlite://scheduler_jobs.db")
    with pytest.raises(ConfigurationError, match="read as a host name") as error:
        asyncio.run(SchedulerService().start())
    assert "sqlite:///scheduler_jobs.db" in (error.value.hint or "")
    built = config.Settings("sqlite", "a test", url="sqlite://scheduler_jobs.db")
    with pytest.raises(ConfigurationError, match=r"\(from a test\)"):
        asyncio.run(SchedulerService(built).start())
    with pytest.raises(ConfigurationError, match="read as a host name"):
        open_backend(built)
    with pytest.raises(ConfigurationError, match="read as a host name"):
        SchedulerService(built).get_scheduled_jobs()
