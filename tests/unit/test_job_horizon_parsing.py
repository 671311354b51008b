"""The job horizon as people write it (CLI, configuration, API) and as every backend shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_admin.core import interval_text, parse_horizon
from scheduler_admin.exceptions import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("36h", timedelta(hours=36)),
        ("1 day 12 hours", timedelta(hours=36)),
        ("90 minutes", timedelta(minutes=90)),
        ("15m", timedelta(minutes=15)),
        ("2w", timedelta(days=14)),
        ("1 day 12:00:00", timedelta(hours=36)),  # as PostgreSQL writes it
        ("00:15:00", timedelta(minutes=15)),
        ("none", None),
        ("", None),
        (None, None),
    ],
)
def test_durations_are_read(text: str | None, expected: timedelta | None) -> None:
    assert parse_horizon(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("soon", "cannot read"), ("3 fortnights", "cannot read"), ("1d tomorrow", "cannot read"),
     ("14m 59s", "at least 15 minutes"), ("0s", "at least 15 minutes")],
)  # fmt: skip
def test_unreadable_or_short_horizons_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as info:
        parse_horizon(text)
    assert info.value.hint


@pytest.mark.parametrize(
    ("horizon", "text"),
    [
        (timedelta(days=1), "1 day"),
        (timedelta(days=2), "2 days"),
        (timedelta(hours=36), "1 day 12:00:00"),
        (timedelta(minutes=15), "00:15:00"),
        (None, None),
    ],
)
def test_a_horizon_is_written_as_postgresql_writes_an_interval(
    horizon: timedelta | None, text: str | None
) -> None:
    assert interval_text(horizon) == text
    assert parse_horizon(text) == horizon
