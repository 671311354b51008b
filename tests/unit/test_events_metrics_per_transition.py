"""Completion events and metrics per transition (issue 14, slice 3) on the Python side, over
fake backends of the contract's shape: ``events --transition`` and ``metrics --transition``
reach the backend, the events table gains a TRANSITION column only when another transition's
event shows up, and the Prometheus text of one transition keeps the families' names. What the
databases record and count per transition: tests/postgres, tests/sqlite and tests/scenarios."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run, run_json
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scheduler_admin import cli
from scheduler_admin.core import Event
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.metrics import ConfiguredSource, SchedulerCollector, render, render_data

MEETING = "6f1d2c3b-0000-4000-8000-000000000001"

MEETING_EVENT: Event = {
    "event_id": 7,
    "event_key": "11111111-2222-4333-8444-555555555555",
    "meeting_id": MEETING,
    "end_time": "2031-06-01T12:00:00+00:00",
    "completed_at": "2031-06-01T12:00:00.250000+00:00",
    "lateness_seconds": 0.25,
    "path": "waker",
    "delivery": None,
    "attempts": 0,
    "last_error": None,
    "transition": "meetings",
    "key": MEETING,
}
MEMBERSHIP_EVENT: Event = {
    "event_id": 8,
    "event_key": "66666666-7777-4888-8999-aaaaaaaaaaaa",
    "meeting_id": None,
    "end_time": "2031-06-02T09:30:00+00:00",
    "completed_at": "2031-06-02T09:30:01.500000+00:00",
    "lateness_seconds": 1.5,
    "path": "job",
    "delivery": "pending",
    "attempts": 1,
    "last_error": None,
    "transition": "memberships",
    "key": "12",
}


def metrics_data(upcoming: int, delivered: int, **extra: Any) -> dict[str, Any]:
    return {
        "backend": "sqlite",
        "enabled": True,
        "upcoming_meetings": upcoming,
        "jobs": upcoming,
        "missing_jobs": 0,
        "orphan_jobs": 1,
        "overdue_meetings": 0,
        "completions": {"job": 3, "waker": 4},
        "lateness": {"buckets": [[0.5, 5], [1, 7]], "count": 7, "sum": 2.5},
        "failed_runs": 2,
        "retried_runs": 1,
        "webhooks": {
            "enabled": True,
            "delivered": delivered,
            "failed": 0,
            "attempt_failures": 0,
            "backlog": 1,
            "oldest_pending_seconds": None,
        },
        **extra,
    }


ALL = metrics_data(120, 950)
MEMBERSHIPS = metrics_data(12, 30, transition="memberships")


class FakeBackend:
    """events() and metrics() of the Backend protocol; records each call's arguments."""

    def __init__(self) -> None:
        self.events_list: list[Event] = [MEETING_EVENT]
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = 0

    def events(self, **kwargs: Any) -> list[Event]:
        self.calls.append(("events", kwargs))
        return copy.deepcopy(self.events_list)

    def metrics(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("metrics", kwargs))
        if kwargs.get("transition") == "nosuch":
            raise InvalidInput(
                "no transition named nosuch",
                hint="scheduler-admin transitions list shows the registered ones.",
            )
        return copy.deepcopy(ALL if kwargs.get("transition") is None else MEMBERSHIPS)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeBackend:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT", "SCHEDULER_JOBSTORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    fake = FakeBackend()
    monkeypatch.setattr(cli, "open_backend", lambda settings: fake)
    return fake


def samples(text: str) -> dict[str, float]:
    """{sample name with its labels: value} of a text exposition."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


# -- the options reach the backend ------------------------------------------------------------


@pytest.mark.parametrize("transition", [None, "memberships", "meetings"])
def test_events_passes_the_transition_with_the_other_options(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str], transition: str | None
) -> None:
    option = () if transition is None else ("--transition", transition)
    code, _, err = run(capsys, "events", "--limit", "5", "--path", "job", *option)
    assert code == 0, err
    assert backend.calls == [("events", {"limit": 5, "path": "job", "transition": transition})]
    assert backend.closed == 1


@pytest.mark.parametrize("transition", [None, "memberships", "meetings"])
def test_metrics_passes_the_transition(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str], transition: str | None
) -> None:
    option = () if transition is None else ("--transition", transition)
    code, _, err = run(capsys, "metrics", *option)
    assert code == 0, err
    assert backend.calls == [("metrics", {"transition": transition})]
    assert backend.closed == 1


@pytest.mark.parametrize("command", ["events", "metrics"])
def test_the_option_needs_a_name_and_is_in_the_help(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, _, err = run(capsys, command, "--transition")
    assert code == 2 and "'--transition' requires an argument" in err
    assert backend.calls == []
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "--transition NAME" in " ".join(out.split())


def test_an_unknown_transition_is_the_backend_error_and_its_hint(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "metrics", "--transition", "nosuch")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "Error: no transition named nosuch",
        "Hint: scheduler-admin transitions list shows the registered ones.",
    ]


# -- the events table -------------------------------------------------------------------------


def test_events_of_meetings_alone_print_what_they_printed_before(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "events")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == [
        "COMPLETED",
        "AT",
        "(UTC)",
        "MEETING",
        "PATH",
        "LATENESS",
        "DELIVERY",
        "ATTEMPTS",
    ]
    assert lines[1].split() == ["2031-06-01", "12:00:00", MEETING, "waker", "0.25", "s", "off", "0"]
    assert lines[2:] == ["1 event"]
    assert "TRANSITION" not in out and "memberships" not in out


def test_events_with_another_transition_show_which_and_its_key(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.events_list = [MEMBERSHIP_EVENT, MEETING_EVENT]
    code, out, _ = run(capsys, "events")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == [
        "TRANSITION",
        "COMPLETED",
        "AT",
        "(UTC)",
        "KEY",
        "PATH",
        "LATENESS",
        "DELIVERY",
        "ATTEMPTS",
    ]
    assert lines[1].split() == [
        "memberships",
        "2031-06-02",
        "09:30:01",
        "12",
        "job",
        "1.50",
        "s",
        "pending",
        "1",
    ]
    assert lines[2].split()[:4] == ["meetings", "2031-06-01", "12:00:00", MEETING]
    assert lines[-1] == "2 events"


def test_events_of_one_other_transition_have_the_column(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.events_list = [MEMBERSHIP_EVENT]
    _, out, _ = run(capsys, "events", "--transition", "memberships")
    assert out.splitlines()[0].startswith("TRANSITION")
    assert out.splitlines()[1].split()[0] == "memberships"


def test_events_json_is_the_backend_answer_with_transition_and_key(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.events_list = [MEMBERSHIP_EVENT, MEETING_EVENT]
    rows = run_json(capsys, "events")
    assert rows == [MEMBERSHIP_EVENT, MEETING_EVENT]
    assert rows[0]["meeting_id"] is None and rows[0]["key"] == "12"


# -- metrics of one transition ----------------------------------------------------------------


def test_metrics_of_a_transition_keep_the_families_names(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    _, every, _ = run(capsys, "metrics")
    code, one, err = run(capsys, "metrics", "--transition", "memberships")
    assert code == 0, err
    assert one == render_data(MEMBERSHIPS).decode()
    # the same families; one transition's figures carry its label, the sum over all none
    assert {f.name for f in text_string_to_metric_families(one)} == {
        f.name for f in text_string_to_metric_families(every)
    }
    label = "{transition=memberships}"
    figures = samples(one)
    assert figures["scheduler_up"] == 1
    assert figures["scheduler_upcoming_meetings" + label] == 12  # its pending rows
    assert figures["scheduler_jobs" + label] == 12
    assert figures["scheduler_webhook_deliveries_total" + label] == 30
    assert figures["scheduler_reconcile_failed_in_a_row"] == 0  # the scheduler's, no label
    assert samples(every)["scheduler_upcoming_meetings"] == 120
    assert all("transition" not in key for key in samples(every))


def test_metrics_json_of_a_transition_is_the_backend_result(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_json(capsys, "metrics", "--transition", "memberships") == MEMBERSHIPS


class Source:
    """A metrics source with two registered transitions."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def metrics(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return copy.deepcopy(ALL if kwargs.get("transition") == "meetings" else MEMBERSHIPS)

    def transitions(self) -> list[dict[str, Any]]:
        return [{"name": "meetings"}, {"name": "memberships"}]


def test_the_collector_reads_one_transition_or_all() -> None:
    source = Source()
    registry = CollectorRegistry()
    registry.register(SchedulerCollector(source, transition="memberships"))
    text = generate_latest(registry).decode()
    assert source.calls == [{"transition": "memberships"}]
    assert samples(text)["scheduler_upcoming_meetings{transition=memberships}"] == 12
    # all of them (GET /metrics): one call per registered transition, each labelled
    everything = samples(render(source).decode())
    assert source.calls[1:] == [{"transition": "meetings"}, {"transition": "memberships"}]
    assert everything["scheduler_upcoming_meetings{transition=meetings}"] == 120
    assert everything["scheduler_upcoming_meetings{transition=memberships}"] == 12
    assert render(source, transition="memberships") == text.encode()
    assert source.calls[3:] == [{"transition": "memberships"}]


def test_the_collector_of_an_unknown_transition_is_up_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Refusing:
        def metrics(self, **kwargs: Any) -> dict[str, Any]:
            raise InvalidInput("no transition named nosuch")

    text = render(Refusing(), transition="nosuch").decode()
    assert samples(text) == {"scheduler_up": 0}
    assert "no transition named nosuch" in caplog.text


def test_the_configured_source_reads_every_transition_over_one_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scheduler_admin.backends

    fake = FakeBackend()
    fake.transitions = lambda: [{"name": "meetings"}, {"name": "memberships"}]  # type: ignore[attr-defined]
    monkeypatch.setattr(scheduler_admin.backends, "open_backend", lambda settings: fake)
    source = ConfiguredSource(lambda: None)  # type: ignore[arg-type, return-value]
    text = render(source).decode()
    assert fake.calls == [
        ("metrics", {"transition": "meetings"}),
        ("metrics", {"transition": "memberships"}),
    ]
    assert fake.closed == 1
    assert samples(text)["scheduler_jobs{transition=memberships}"] == 12


def test_the_configured_source_passes_the_transition_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scheduler_admin.backends

    fake = FakeBackend()
    monkeypatch.setattr(scheduler_admin.backends, "open_backend", lambda settings: fake)
    source = ConfiguredSource(lambda: None)  # type: ignore[arg-type, return-value]
    assert source.metrics() == ALL
    assert source.metrics(transition="memberships") == MEMBERSHIPS
    # all transitions: no argument (what GET /metrics has always called)
    assert fake.calls == [("metrics", {}), ("metrics", {"transition": "memberships"})]
    assert fake.closed == 2
