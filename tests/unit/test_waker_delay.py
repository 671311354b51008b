"""The waker's wait counts from the database's now(), the start of the call's transaction: a
slow call of wake() does not push the next one back by its own duration."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from scheduler_admin import waker
from scheduler_admin.core import Wake

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


class Clock:
    """time.monotonic() of the waker module, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowSource:
    """A WakeSource whose call takes ``took`` seconds on the clock; the database's now() is the
    start of the call."""

    target = "slow"
    poll_interval: float | None = None

    def __init__(self, clock: Clock, took: float, next_in: float | None) -> None:
        self.clock, self.took, self.next_in = clock, took, next_in

    def wake(self, *, transition: str | None = None) -> Wake:
        self.clock.now += self.took
        return {  # type: ignore[return-value]
            "completed": 0,
            "now": NOW.isoformat(),
            "next_end_time": None
            if self.next_in is None
            else (NOW + timedelta(seconds=self.next_in)).isoformat(),
            "paused": False,
        }

    def wait(self, timeout: float, stop: threading.Event) -> list[datetime]:
        return []

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("took", "next_in", "expected"), [(0.0, 0.3, 0.3), (0.2, 0.3, 0.1)])
def test_the_wait_is_the_time_left_after_the_call(
    monkeypatch: pytest.MonkeyPatch, took: float, next_in: float, expected: float
) -> None:
    clock = Clock()
    monkeypatch.setattr(waker.time, "monotonic", clock)
    woke = waker.Waker(SlowSource(clock, took, next_in), jitter=0)
    assert woke._delay(woke.run_once()) == pytest.approx(expected)
    # an announced end time is due at the same instant, counted from the call's start
    assert woke._deadline_of(NOW + timedelta(seconds=next_in)) == pytest.approx(100.0 + next_in)


def test_an_end_time_passed_during_the_call_is_called_for_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(waker.time, "monotonic", clock)
    woke = waker.Waker(SlowSource(clock, 0.5, 0.3), jitter=0)
    assert woke._delay(woke.run_once()) == 0.0
