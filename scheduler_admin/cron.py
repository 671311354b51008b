"""Five-field cron expressions, as pg_cron reads them (always UTC, minute granularity).

``minute hour day-of-month month day-of-week`` with ``*``, numbers, lists (``1,15``), ranges
(``1-5``), steps (``*/15``, ``10-40/10``, ``5/20``), month and weekday names (``jan``, ``mon``),
weekday 7 as Sunday, and the shorthands ``@yearly``, ``@annually``, ``@monthly``, ``@weekly``,
``@daily``, ``@midnight`` and ``@hourly``. As in Vixie cron (and pg_cron), when both the day of
month and the day of week are restricted, a day matches if either matches.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

UTC = timezone.utc

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Far enough for the rarest five-field schedule (29 February on a given weekday).
_SEARCH_YEARS = 30


class CronError(ValueError):
    """A cron expression that cannot be parsed."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _WEEKDAYS),
)


def _value(text: str, field: _Field, expression: str) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.names[lowered]
    if not text.isdigit():
        raise CronError(f"invalid {field.name} {text!r} in cron expression {expression!r}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(
            f"{field.name} {value} out of range {field.low}-{field.high} "
            f"in cron expression {expression!r}"
        )
    return value


def _parse_field(text: str, field: _Field, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"empty list item in {field.name} of cron expression {expression!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in cron expression {expression!r}")
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, field, expression), _value(last, field, expression)
            if low > high:
                raise CronError(f"range {base!r} is reversed in cron expression {expression!r}")
        else:
            low = _value(base, field, expression)
            # "5/20" means "from 5 to the end, every 20" (Vixie cron).
            high = field.high if slash else low
        values.update(range(low, high + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed five-field cron expression."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool

    def day_matches(self, year: int, month: int, day: int) -> bool:
        """Whether a calendar day matches the day-of-month and day-of-week fields."""
        weekday = (calendar.weekday(year, month, day) + 1) % 7  # Monday=0 -> Sunday=0
        in_days = day in self.days
        in_weekdays = weekday in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def matches(self, when: datetime) -> bool:
        """Whether the schedule fires in the UTC minute of ``when``."""
        when = _utc(when)
        return (
            when.minute in self.minutes
            and when.hour in self.hours
            and when.month in self.months
            and self.day_matches(when.year, when.month, when.day)
        )

    def next_run(self, after: datetime) -> datetime | None:
        """The first minute at or after ``after`` (UTC) in which the schedule fires."""
        start = _utc(after)
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = start.replace(second=0, microsecond=0)
        for year in range(start.year, start.year + _SEARCH_YEARS):
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                for day in range(1, calendar.monthrange(year, month)[1] + 1):
                    if (year, month, day) < (start.year, start.month, start.day):
                        continue
                    if not self.day_matches(year, month, day):
                        continue
                    same_day = (year, month, day) == (start.year, start.month, start.day)
                    for hour in self.hours:
                        if same_day and hour < start.hour:
                            continue
                        for minute in self.minutes:
                            if same_day and hour == start.hour and minute < start.minute:
                                continue
                            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        return None


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("cron times must be timezone-aware (UTC)")
    return when.astimezone(UTC)


@lru_cache(maxsize=4096)
def parse(expression: str) -> CronSchedule:
    """Parse a five-field cron expression (cached)."""
    text = " ".join(expression.split())
    text = _SHORTHANDS.get(text.lower(), text)
    parts = text.split(" ")
    if len(parts) != 5:
        raise CronError(
            f"cron expression {expression!r} must have five fields "
            "(minute hour day-of-month month day-of-week)"
        )
    minute, hour, day, month, weekday = (
        _parse_field(part, field, expression) for part, field in zip(parts, _FIELDS, strict=True)
    )
    weekdays = frozenset(d % 7 for d in weekday)  # 7 is Sunday too
    return CronSchedule(
        expression=expression,
        minutes=tuple(sorted(minute)),
        hours=tuple(sorted(hour)),
        days=day,
        months=tuple(sorted(month)),
        weekdays=weekdays,
        day_restricted=not parts[2].startswith("*"),
        weekday_restricted=not parts[4].startswith("*"),
    )


def matches(expression: str, when: datetime) -> bool:
    """Whether ``expression`` fires in the UTC minute of ``when``."""
    return parse(expression).matches(when)


def next_run(expression: str, after: datetime) -> datetime | None:
    """The first UTC minute at or after ``after`` in which ``expression`` fires."""
    return parse(expression).next_run(after)
