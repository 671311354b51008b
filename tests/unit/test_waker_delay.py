"""The waker's wait counts from the database's now(), the start of the call's transaction: a
slow call of wake() does not push the next one back by its own duration. The elected waker
(revision 0012) waits for no random delay; a standby never calls wake(); a waker that is not
elected (elect=False, or a database without the lease) keeps the random delay."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from scheduler_admin import waker
from scheduler_admin.core import Wake
from scheduler_admin.exceptions import NotMigrated

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


class ElectingSource(SlowSource):
    """A source whose database elects: ``held`` says whether a claim of the lease succeeds
    (None: the database has no lease, as before revision 0012)."""

    def __init__(self, clock: Clock, held: bool | None) -> None:
        super().__init__(clock, 0.0, 30.0)
        self.held = held
        self.claims: list[str] = []
        self.released: list[str] = []
        self.woken = 0

    def wake(self, *, transition: str | None = None) -> Wake:
        self.woken += 1
        return super().wake(transition=transition)

    def claim(self, holder: str, lease_seconds: float, transition: str | None) -> dict[str, object]:
        self.claims.append(holder)
        if self.held is None:
            raise NotMigrated("no function scheduler.claim_waker")
        return {"held": self.held, "holder": holder if self.held else "other", "now": NOW}

    def release(self, holder: str, transition: str | None) -> None:
        self.released.append(holder)

    def wait(self, timeout: float, stop: threading.Event) -> list[datetime]:
        self.clock.now += timeout  # the whole wait passes at once
        return []


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> tuple[Clock, list[float]]:
    """The waker module's clock, and the random delays it draws."""
    clock = Clock()
    drawn: list[float] = []
    monkeypatch.setattr(waker.time, "monotonic", clock)
    monkeypatch.setattr(waker.random, "uniform", lambda a, b: drawn.append(b) or 0.0)
    return clock, drawn


def test_the_elected_waker_adds_no_random_delay(delays: tuple[Clock, list[float]]) -> None:
    clock, drawn = delays
    source = ElectingSource(clock, held=True)
    woke = waker.Waker(source, jitter=0.1, holder="me")
    woke._step()
    assert woke.active and woke.elected and woke.role == "active"
    assert source.woken == 1 and drawn == []
    # it renewed its lease every RENEW seconds while it slept until the next end time
    assert len(source.claims) > 30 / waker.RENEW - 2


def test_a_standby_never_calls_wake(delays: tuple[Clock, list[float]]) -> None:
    clock, drawn = delays
    source = ElectingSource(clock, held=False)
    woke = waker.Waker(source, jitter=0.1)
    for _ in range(5):
        woke._step()
    assert source.woken == 0 and woke.cycles == 0 and drawn == []
    assert woke.role == "standby" and not woke.active and len(source.claims) == 5
    woke._release()  # a standby has nothing to release
    assert source.released == []


def test_a_clean_stop_releases_the_lease(delays: tuple[Clock, list[float]]) -> None:
    clock, _ = delays
    source = ElectingSource(clock, held=True)
    woke = waker.Waker(source, holder="me")
    woke._lead()
    woke._release()
    assert source.released == ["me"] and not woke.active


def test_without_a_lease_in_the_database_every_instance_wakes_with_the_random_delay(
    delays: tuple[Clock, list[float]],
) -> None:
    clock, drawn = delays
    source = ElectingSource(clock, held=None)
    woke = waker.Waker(source, jitter=0.1)
    woke._step()
    assert source.woken == 1 and drawn == [0.1]
    assert not woke.elected and len(source.claims) == 1  # tried again after max_wait only


def test_elect_false_is_the_previous_behaviour(delays: tuple[Clock, list[float]]) -> None:
    clock, drawn = delays
    source = ElectingSource(clock, held=False)
    woke = waker.Waker(source, jitter=0.1, elect=False)
    woke._step()
    assert source.woken == 1 and source.claims == [] and drawn == [0.1]


def test_the_lease_outlasts_several_renewals() -> None:
    assert waker.LEASE <= 1.5 and waker.RENEW <= 0.5 and waker.LEASE >= 2 * waker.RENEW
    with pytest.raises(ValueError, match="shorter than the lease"):
        waker.Waker(ElectingSource(Clock(), True), lease=0.4, renew=0.5)
