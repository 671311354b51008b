"""Configuration resolves in the documented order and never shows a secret."""

from __future__ import annotations

import pytest

from scheduler_admin.config import mask_url, resolve
from scheduler_admin.exceptions import ConfigurationError

PG = "postgresql://app:pw1@db:5432/app"


@pytest.mark.parametrize(
    ("explicit", "env", "source", "url"),
    [
        (PG, {"SCHEDULER_DATABASE_URL": "sqlite:///a.db"}, "--database-url", PG),
        (
            None,
            {"SCHEDULER_DATABASE_URL": PG, "DATABASE_URL": "sqlite:///b.db"},
            "SCHEDULER_DATABASE_URL",
            PG,
        ),
        (
            None,
            {"DATABASE_URL": PG, "SCHEDULER_JOBSTORE_URL": "sqlite:///c.db"},
            "DATABASE_URL",
            PG,
        ),
        (None, {"ENVIRONMENT": "prod", "SUPABASE_DB_URL": PG}, "SUPABASE_DB_URL", PG),
        (None, {"SUPABASE_DB_URL": PG}, "SCHEDULER_JOBSTORE_URL", "sqlite:///scheduler_jobs.db"),
        (
            None,
            {"SCHEDULER_JOBSTORE_URL": "sqlite:///dev.db"},
            "SCHEDULER_JOBSTORE_URL",
            "sqlite:///dev.db",
        ),
        (None, {}, "SCHEDULER_JOBSTORE_URL", "sqlite:///scheduler_jobs.db"),
    ],
)
def test_resolution_order(explicit: str | None, env: dict[str, str], source: str, url: str) -> None:
    settings = resolve(explicit, env)
    assert (settings.source, settings.url) == (source, url)


def test_supabase_rest_needs_both_variables() -> None:
    settings = resolve(
        None,
        {
            "ENVIRONMENT": "prod",
            "SUPABASE_URL": "https://x.supabase.co/",
            "SUPABASE_SERVICE_ROLE_KEY": "eyJhbGciOiJIUzI1NiJ9.secretpart",
        },
    )
    assert settings.backend == "supabase" and settings.url is None
    assert "secretpart" not in settings.display
    with pytest.raises(ConfigurationError, match="ENVIRONMENT=prod but no production database"):
        resolve(None, {"ENVIRONMENT": "prod", "SUPABASE_URL": "https://x.supabase.co"})


def test_enable_flag() -> None:
    assert resolve(None, {"ENABLE_MEETING_STATUS_UPDATES": "false"}).enabled is False
    assert resolve(None, {}).enabled is True
    with pytest.raises(ConfigurationError, match="is not a boolean"):
        resolve(None, {"ENABLE_MEETING_STATUS_UPDATES": "maybe"})


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(
        ConfigurationError, match="unsupported database URL 'mysql://u:\\*\\*\\*@h/db'"
    ):
        resolve("mysql://u:pw@h/db", {})


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql://u@h/db?password=s3cret&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("host=h user=u password=s3cret dbname=db", "host=h user=u password=*** dbname=db"),
        ("sqlite:///scheduler_jobs.db", "sqlite:///scheduler_jobs.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
