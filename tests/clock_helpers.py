"""Times that are still in the future whenever the tests run.

A meeting (or row) whose end time has passed completes on insert, so a test that needs an
upcoming one cannot use a fixed date: it would start failing on that date. :func:`future_on` gives
a fixed calendar moment (month, day, time of day, UTC) in the first year in which it is at least
:data:`MARGIN` ahead of this machine's clock. Only the year changes from one run to the next, so
what the tests derive from the moment (a schedule such as ``26 9 14 3 *``, a time of day, the
next day or the year's end) stays the same. The servers under test run on this machine (the
local lane's cluster, the container lane's container on the host network; the ``pg_server``
fixture checks that the server's clock agrees with this one), and the margin is far beyond any
test's length.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

UTC = timezone.utc
MARGIN = timedelta(days=30)


def future_on(
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
    *,
    now: datetime | None = None,
) -> datetime:
    """``month``-``day`` ``hour``:``minute``:``second``.``microsecond`` UTC in the first year in
    which it is at least :data:`MARGIN` after ``now`` (default: this machine's clock)."""
    now = datetime.now(UTC) if now is None else now
    year = now.year
    while True:
        try:
            at = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)
        except ValueError:  # 29 February of a year that is not a leap year
            at = None
        if at is not None and at >= now + MARGIN:
            return at
        year += 1
